package probe

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/devices/clock"
)

type event struct {
	kind     string // up, down, failed, recovered
	failures int
	at       time.Time
}

// TestRunCountsOnClock: checks run at once and then every interval on the
// clock, never in between; probe.failures failures in a row report the
// outage once, the first success ends it; the run's first success is
// reported too (an outage from before a restart).
func TestRunCountsOnClock(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()

	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	clk := clock.NewFake(start)
	cfg := config.Probe{URL: srv.URL, Interval: config.Duration(30 * time.Second), Timeout: config.Duration(5 * time.Second), Failures: 2}
	p := New(cfg, clk, slog.New(slog.NewTextHandler(io.Discard, nil)))
	events := make(chan event, 16)
	p.Up = func(ok bool) {
		if ok {
			events <- event{kind: "up"}
		} else {
			events <- event{kind: "down"}
		}
	}
	p.Failed = func(check, _ string, failures int, at time.Time) {
		if check != srv.URL {
			t.Errorf("Failed check %q, want %q", check, srv.URL)
		}
		events <- event{kind: "failed", failures: failures, at: at}
	}
	p.Recovered = func(_ string, at time.Time) { events <- event{kind: "recovered", at: at} }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()

	next := func(want string) event {
		t.Helper()
		select {
		case e := <-events:
			if e.kind != want {
				t.Fatalf("event %q, want %q", e.kind, want)
			}
			return e
		case <-time.After(5 * time.Second):
			t.Fatalf("no %q event", want)
		}
		return event{}
	}
	quiet := func() {
		t.Helper()
		select {
		case e := <-events:
			t.Fatalf("unexpected event %q", e.kind)
		case <-time.After(20 * time.Millisecond):
		}
	}
	// The ticker is on the fake clock: advancing it is the only way to the
	// next check.
	tick := func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for clk.Pending() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no ticker on the fake clock")
			}
			time.Sleep(time.Millisecond)
		}
		clk.Advance(30*time.Second - time.Nanosecond)
		quiet()
		clk.Advance(time.Nanosecond)
	}

	next("up")
	if e := next("recovered"); !e.at.Equal(start) {
		t.Errorf("first success reported at %v, want %v", e.at, start)
	}
	status.Store(http.StatusServiceUnavailable)
	tick()
	next("down")
	quiet() // one failure of two
	tick()
	next("down")
	if e := next("failed"); e.failures != 2 || !e.at.Equal(start.Add(time.Minute)) {
		t.Errorf("failed after %d at %v, want 2 at %v", e.failures, e.at, start.Add(time.Minute))
	}
	tick()
	next("down")
	quiet() // reported once
	status.Store(http.StatusOK)
	tick()
	next("up")
	next("recovered")
	tick()
	next("up")
	quiet() // a success after a success is not reported again
	cancel()
	<-done
	if n := clk.Pending(); n != 0 {
		t.Errorf("%d timers left pending after Run", n)
	}
}

// TestCheck: a TCP check passes when the address accepts, fails when it
// does not; a redirect is not a pass.
func TestCheck(t *testing.T) {
	srv := httptest.NewServer(http.RedirectHandler("/elsewhere", http.StatusFound))
	defer srv.Close()
	clk := clock.NewFake(time.Time{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	timeout := config.Duration(5 * time.Second)
	if err := New(config.Probe{URL: srv.URL, Timeout: timeout}, clk, log).Check(context.Background()); err == nil {
		t.Error("HTTP check of a redirect passed")
	}
	tcp := New(config.Probe{Address: srv.Listener.Addr().String(), Timeout: timeout}, clk, log)
	if err := tcp.Check(context.Background()); err != nil {
		t.Errorf("TCP check of a listening address: %v", err)
	}
	if got, want := tcp.Target(), "tcp://"+srv.Listener.Addr().String(); got != want {
		t.Errorf("Target = %q, want %q", got, want)
	}
	addr := srv.Listener.Addr().String()
	srv.Close()
	if err := New(config.Probe{Address: addr, Timeout: timeout}, clk, log).Check(context.Background()); err == nil {
		t.Error("TCP check of a closed address passed")
	}
}
