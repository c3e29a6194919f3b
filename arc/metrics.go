package arc

import "github.com/prometheus/client_golang/prometheus"

// metrics are the transmitter's, registered on the registry passed in.
type metrics struct {
	up, state, lastAck, pending *prometheus.GaugeVec
	rtt                         *prometheus.HistogramVec
	naks, retries, acked        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, paths []string) *metrics {
	// Every metric has one series per receiver, labelled path.
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"path"})
	}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"path"})
	}
	m := &metrics{
		up: gauge("hallguard_arc_path_up",
			"1 while the DC-09 path to this receiver is ok or degraded, 0 once it has failed (no ACK within its fail time)."),
		state: gauge("hallguard_arc_path_state",
			"State of the DC-09 path to this receiver: 0 ok, 1 degraded (an exchange failed), 2 failed."),
		lastAck: gauge("hallguard_arc_last_ack_timestamp_seconds",
			"Unix time of the last ACK from this receiver (events, polls and tests)."),
		pending: gauge("hallguard_arc_events_pending",
			"Events in the durable DC-09 queue not yet ACKed, counted on the receiver first in line for them."),
		rtt: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hallguard_arc_round_trip_seconds",
			Help:    "Time from sending a DC-09 message to its ACK.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"path"}),
		naks: counter("hallguard_arc_naks_total",
			"NAKs from this receiver (a timestamp out of its window, or a message it could not decrypt)."),
		retries: counter("hallguard_arc_retries_total",
			"Messages sent again to this receiver after silence, an error or a NAK."),
		acked: counter("hallguard_arc_events_acked_total",
			"Events this receiver ACKed (and so retired from the DC-09 queue)."),
	}
	if reg != nil {
		reg.MustRegister(m.up, m.state, m.lastAck, m.pending, m.rtt, m.naks, m.retries, m.acked)
	}
	for _, p := range paths { // every series exists from the start
		m.up.WithLabelValues(p).Set(1)
		m.state.WithLabelValues(p)
		m.lastAck.WithLabelValues(p)
		m.pending.WithLabelValues(p)
		m.rtt.WithLabelValues(p)
		m.naks.WithLabelValues(p)
		m.retries.WithLabelValues(p)
		m.acked.WithLabelValues(p)
	}
	return m
}
