package testkit

import (
	"os/exec"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DeleteAMQPNamespace removes the durable queues and exchanges whose names
// start with ns, which a test's buses declared on the broker at url: they
// outlive the test otherwise. It lists them with rabbitmqctl (AMQP cannot
// list); without it they stay, empty.
func DeleteAMQPNamespace(url, ns string) {
	list := func(what string) []string {
		out, err := exec.Command("rabbitmqctl", "-q", "list_"+what, "name").Output() // #nosec G204 -- a fixed command; what is "queues" or "exchanges"
		if err != nil {
			return nil
		}
		var names []string
		for _, l := range strings.Split(string(out), "\n") {
			if l = strings.TrimSpace(l); strings.HasPrefix(l, ns) {
				names = append(names, l)
			}
		}
		return names
	}
	queues, exchanges := list("queues"), list("exchanges")
	if len(queues)+len(exchanges) == 0 {
		return
	}
	conn, err := amqp.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	defer ch.Close()
	for _, q := range queues {
		_, _ = ch.QueueDelete(q, false, false, false)
	}
	for _, x := range exchanges {
		_ = ch.ExchangeDelete(x, false, false)
	}
}
