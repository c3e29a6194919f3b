package daemon

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hallguard/hallguard/daemon/probe"
)

// probeLoop checks the business system (§4.2) every probe.interval while
// ctx lasts (package probe): probe.failures failures in a row open the
// system_failure incident, the first success after them resolves it. It
// does nothing when no probe is configured. Settings are read at start; a
// reload that changes them takes effect at the next start.
func (d *Daemon) probeLoop(ctx context.Context) {
	if !d.cfg.Probe.Enabled() {
		return
	}
	up := prometheus.NewGauge(prometheus.GaugeOpts{Name: "hallguard_probe_up",
		Help: "1 if the last business-system check (§4.2, probe:) succeeded, 0 if it failed."})
	d.metrics.Registry.MustRegister(up)
	p := probe.New(d.cfg.Probe, d.clk, d.log)
	p.Up = func(ok bool) { up.Set(b2f(ok)) }
	p.Failed = func(check, detail string, failures int, at time.Time) {
		d.eng.ProbeFailed(check, detail, failures, at)
	}
	p.Recovered = func(check string, at time.Time) { d.eng.ProbeRecovered(check, at) }
	p.Run(ctx)
}
