package bus

import (
	"context"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The kinds of failure that modshop_bus_messages_retried_total counts.
const (
	kindTransient = "transient"
	kindPermanent = "permanent"
)

// metrics are the bus's Prometheus collectors. Counts of published
// messages and lag are read from the tables at scrape time, so they count
// only what was committed. The gauges read at scrape time are this
// process's alone (Collect), whatever the topology.
type metrics struct {
	bus          *Bus
	processed    *prometheus.CounterVec
	retried      *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	duplicates   *prometheus.CounterVec
	unknown      *prometheus.CounterVec
	replayed     *prometheus.CounterVec
	checkpoints  *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	hop          *prometheus.HistogramVec
	published    *prometheus.Desc
	pruned       *prometheus.Desc
	lag          *prometheus.Desc
	openDead     *prometheus.Desc
	groupActive  *prometheus.Desc
}

func newMetrics(b *Bus) *metrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "modshop_bus_" + name, Help: help}, []string{"handler"})
	}
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
	return &metrics{
		bus:       b,
		processed: counter("messages_processed_total", "Messages a handler applied."),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modshop_bus_messages_retried_total",
			Help: "Handler attempts that failed and were retried, by kind: transient (the group pauses and reads again, for as long as it takes) or permanent (counts towards the dead letter).",
		}, []string{"handler", "kind"}),
		deadLettered: counter("messages_dead_lettered_total", "Messages parked as dead letters after the last attempt."),
		duplicates:   counter("messages_duplicate_total", "Deliveries of messages the handler had already applied (no effect)."),
		unknown:      counter("messages_unknown_total", "Messages of unregistered events, acknowledged without handling."),
		replayed:     counter("dead_letters_replayed_total", "Dead letters replayed successfully."),
		checkpoints:  counter("batch_checkpoints_total", "Batches committed early because a later message waited on a lock (see checkpoint in batch.go)."),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "modshop_bus_handler_duration_seconds", Help: "Time a handler's transaction took.", Buckets: buckets,
		}, []string{"handler"}),
		hop: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "modshop_bus_hop_seconds", Help: "From publishing a message to its handler starting.", Buckets: buckets,
		}, []string{"handler"}),
		published:   prometheus.NewDesc("modshop_bus_messages_published", "Messages committed to a topic.", []string{"topic"}, nil),
		pruned:      prometheus.NewDesc("modshop_bus_messages_pruned", "Messages deleted from a topic after the retention, once every active consumer group had passed them.", []string{"topic"}, nil),
		lag:         prometheus.NewDesc("modshop_bus_lag_messages", "Messages committed but not yet acknowledged by a handler.", []string{"handler", "topic"}, nil),
		openDead:    prometheus.NewDesc("modshop_bus_dead_letters_open", "Dead letters waiting for staff.", []string{"handler"}, nil),
		groupActive: prometheus.NewDesc("modshop_bus_consumer_group_active", "1 while a consumer group holds pruning back (seen running within the group expiry), 0 once it does not.", []string{"handler", "topic"}, nil),
	}
}

func (m *metrics) vectors() []prometheus.Collector {
	return []prometheus.Collector{m.processed, m.retried, m.deadLettered, m.duplicates, m.unknown, m.replayed, m.checkpoints, m.latency, m.hop}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.vectors() {
		c.Describe(ch)
	}
	ch <- m.published
	ch <- m.pruned
	ch <- m.lag
	ch <- m.openDead
	ch <- m.groupActive
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.vectors() {
		c.Collect(ch)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Each gauge has one owner, so that summing a metric over every
	// process of a split shop counts each thing once: a process reports
	// the lag, dead letters and activity of its own handlers' groups (and
	// its outbox's), and the message counts of the topics its own modules
	// publish (Config.Publishes) or of its outbox.
	stats, err := m.bus.overview(ctx, true, false)
	if err != nil {
		if !m.bus.outage.Failed(err) {
			m.bus.log.Warn("bus metrics: overview failed", "err", err)
		}
		return
	}
	tables := m.bus.transport.tables()
	for _, t := range stats {
		if m.bus.publishes(t.Topic) || slices.Contains(tables, t.Topic) {
			ch <- prometheus.MustNewConstMetric(m.published, prometheus.CounterValue, float64(t.Published), t.Topic)
			ch <- prometheus.MustNewConstMetric(m.pruned, prometheus.CounterValue, float64(t.Pruned), t.Topic)
		}
		for _, c := range t.Consumers {
			ch <- prometheus.MustNewConstMetric(m.lag, prometheus.GaugeValue, float64(c.Lag), c.Handler, t.Topic)
			ch <- prometheus.MustNewConstMetric(m.openDead, prometheus.GaugeValue, float64(c.DeadLetters), c.Handler)
			active := 0.0
			if c.Active {
				active = 1
			}
			ch <- prometheus.MustNewConstMetric(m.groupActive, prometheus.GaugeValue, active, c.Handler, t.Topic)
		}
	}
}
