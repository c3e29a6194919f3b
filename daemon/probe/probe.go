// Package probe checks the business system (§4.2, probe:): an HTTP GET of
// probe.url that must answer 2xx, or a TCP connection to probe.address,
// every probe.interval on the injected clock. probe.failures failures in a
// row are reported as the outage, the first success after them as its end.
//
// It is shaped like blackbox_exporter's prober: Check makes one check and
// says only whether it passed; Run repeats it and counts. It must not
// decide what an outage means for the hall, nor touch the engine, the
// journal, MQTT or metrics registries itself: it reports through the
// callbacks the daemon gives it, and it must never block an alarm path
// (it runs in its own goroutine and ends with its context).
package probe

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/devices/clock"
)

// Prober checks one business system. New fills it from the config; the
// callbacks are the caller's and may be nil.
type Prober struct {
	Config config.Probe
	// Client makes HTTP checks (probe.url); Dialer TCP checks
	// (probe.address).
	Client *http.Client
	Dialer *net.Dialer
	Clock  clock.Clock
	Logger *slog.Logger

	// Up is told the result of every check.
	Up func(ok bool)
	// Failed is called once when failures checks in a row have failed.
	Failed func(check, detail string, failures int, at time.Time)
	// Recovered is called at the first success after Failed, and at the
	// first success of a run (an outage opened before a restart is then
	// resolved; the receiver ignores it otherwise).
	Recovered func(check string, at time.Time)
}

// New returns a Prober for cfg: an HTTP client with probe.timeout that does
// not follow redirects (a redirect is not a 2xx), and a plain dialer.
func New(cfg config.Probe, clk clock.Clock, log *slog.Logger) *Prober {
	return &Prober{
		Config: cfg,
		Client: &http.Client{Timeout: cfg.Timeout.D(), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		Dialer: &net.Dialer{},
		Clock:  clk,
		Logger: log,
	}
}

// Target names what is checked, as logged and reported: probe.url, or
// tcp://probe.address.
func (p *Prober) Target() string {
	if p.Config.URL != "" {
		return p.Config.URL
	}
	return "tcp://" + p.Config.Address
}

// Check makes one check within probe.timeout: nil if it passed.
func (p *Prober) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.Config.Timeout.D())
	defer cancel()
	if p.Config.URL == "" {
		c, err := p.Dialer.DialContext(ctx, "tcp", p.Config.Address)
		if err != nil {
			return err
		}
		return c.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Config.URL, nil)
	if err != nil {
		return err
	}
	resp, err := p.Client.Do(req)
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

// Run checks at once, then every probe.interval on the clock, until ctx
// ends.
func (p *Prober) Run(ctx context.Context) {
	check := p.Target()
	failures, opened, first := 0, false, true
	t, tick := p.Clock.NewTicker(p.Config.Interval.D())
	defer t.Stop()
	for {
		err := p.Check(ctx)
		if ctx.Err() != nil {
			return
		}
		now := p.Clock.Now()
		if p.Up != nil {
			p.Up(err == nil)
		}
		if err != nil {
			failures++
			p.Logger.Warn("business system check failed", "check", check, "failures", failures, "err", err)
			if failures >= p.Config.Failures && !opened {
				opened = true
				if p.Failed != nil {
					p.Failed(check, err.Error(), failures, now)
				}
			}
		} else {
			if opened {
				p.Logger.Info("business system back", "check", check)
			}
			if (opened || first) && p.Recovered != nil {
				p.Recovered(check, now)
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
