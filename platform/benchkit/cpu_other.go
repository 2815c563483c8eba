//go:build !unix

package benchkit

import "time"

// processCPU is unknown here.
func processCPU() time.Duration { return 0 }
