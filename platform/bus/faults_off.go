//go:build !chaos

package bus

import "context"

// injectFault is the chaos suite's fault hook (see faults_chaos.go). In
// every build but the chaos suite's (go build -tags chaos) it does nothing,
// and the compiler inlines it away: the shop that is shipped carries no
// fault injection at all (app/chaos checks the built binary).
func injectFault(context.Context, string, string) error { return nil }
