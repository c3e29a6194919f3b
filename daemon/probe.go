package daemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// probeLoop checks the business system (§4.2) every probe.interval while
// ctx lasts: probe.failures failures in a row open the system_failure
// incident, the first success after them resolves it. It does nothing
// when no probe is configured. Settings are read at start; a reload that
// changes them takes effect at the next start.
func (d *Daemon) probeLoop(ctx context.Context) {
	p := d.cfg.Probe
	if !p.Enabled() {
		return
	}
	check := p.URL
	if check == "" {
		check = "tcp://" + p.Address
	}
	client := &http.Client{Timeout: p.Timeout.D(), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// The first success also tells the engine, so that an outage the probe
	// opened before a restart is resolved (the engine ignores it otherwise).
	failures, opened, first := 0, false, true
	up := prometheus.NewGauge(prometheus.GaugeOpts{Name: "hallguard_probe_up",
		Help: "1 if the last business-system check (§4.2, probe:) succeeded, 0 if it failed."})
	d.metrics.Registry.MustRegister(up)
	t, tick := d.clk.NewTicker(p.Interval.D())
	defer t.Stop()
	for {
		err := d.probeOnce(ctx, client, p.URL, p.Address, p.Timeout.D())
		if ctx.Err() != nil {
			return
		}
		now := d.clk.Now()
		up.Set(b2f(err == nil))
		if err != nil {
			failures++
			d.log.Warn("business system check failed", "check", check, "failures", failures, "err", err)
			if failures >= p.Failures && !opened {
				opened = true
				d.eng.ProbeFailed(check, err.Error(), failures, now)
			}
		} else {
			if opened {
				d.log.Info("business system back", "check", check)
			}
			if opened || first {
				d.eng.ProbeRecovered(check, now)
			}
			failures, opened = 0, false
		}
		first = false
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}

func (d *Daemon) probeOnce(ctx context.Context, client *http.Client, url, address string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if url == "" {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", address)
		if err != nil {
			return err
		}
		return c.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	return nil
}
