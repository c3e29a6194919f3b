package daemon

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/daemon/engine/enginetest"
	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/clock"
)

// These tests drive the daemon's own waits with the fake clock: each waits
// until the code under test has scheduled its timer on the fake clock
// (Pending), so a wait taken from package time instead fails them.

// waitPending waits (in real time, briefly) until clk has n timers
// scheduled: the code under test has reached its wait.
func waitPending(t *testing.T, clk *clock.Fake, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for clk.Pending() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d timers pending on the fake clock, want %d (a wait not on the injected clock?)", what, clk.Pending(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWaitInputsTimesOutOnClock: with no input opening, waitInputs gives
// up after exactly 10 s on the daemon's clock, and returns true (the
// daemon starts anyway).
func TestWaitInputsTimesOutOnClock(t *testing.T) {
	d := bareDaemon(t)
	clk := d.clk.(*clock.Fake)
	d.cfg.Inputs = []config.Input{{ID: "door-1"}, {ID: "door-2"}}
	opened := make(chan string, 2)
	opened <- "door-1" // one opens at once, the other never
	done := make(chan bool, 1)
	go func() { done <- d.waitInputs(context.Background(), opened) }()

	waitPending(t, clk, 1, "waiting for door-2")
	clk.Advance(10*time.Second - time.Nanosecond)
	select {
	case <-done:
		t.Fatal("waitInputs returned before 10 s had passed")
	case <-time.After(20 * time.Millisecond):
	}
	clk.Advance(time.Nanosecond)
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("waitInputs = false after the 10 s wait, want true (start anyway)")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waitInputs still waiting after 10 s on the clock")
	}
	if n := clk.Pending(); n != 0 {
		t.Errorf("%d timers left pending", n)
	}
}

// TestWaitInputsStopsTimers: inputs that open, and a context that ends,
// leave no timer behind; the ended context gives false.
func TestWaitInputsStopsTimers(t *testing.T) {
	d := bareDaemon(t)
	clk := d.clk.(*clock.Fake)
	d.cfg.Inputs = []config.Input{{ID: "door-1"}, {ID: "door-2"}}
	opened := make(chan string, 2)
	opened <- "door-1"
	opened <- "door-2"
	if !d.waitInputs(context.Background(), opened) {
		t.Fatal("waitInputs = false with every input open")
	}
	if n := clk.Pending(); n != 0 {
		t.Errorf("every input open: %d timers left pending", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool, 1)
	go func() { done <- d.waitInputs(ctx, make(chan string)) }()
	waitPending(t, clk, 1, "waiting for inputs")
	cancel()
	if <-done {
		t.Error("waitInputs = true after its context ended, want false")
	}
	if n := clk.Pending(); n != 0 {
		t.Errorf("context ended: %d timers left pending", n)
	}
}

// failingBackend cannot open any input; it counts the tries.
type failingBackend struct{ opens atomic.Int32 }

func (b *failingBackend) OpenInput(devices.InputSpec) (devices.Input, error) {
	b.opens.Add(1)
	return nil, errors.New("line busy")
}

func (b *failingBackend) OpenOutput(devices.OutputSpec) (devices.Output, error) {
	return nil, errors.New("no outputs")
}

func (b *failingBackend) Close() error { return nil }

// TestInputReopenWaitsOnClock: an input that cannot be opened is tried
// again every 2 s on the daemon's clock, not before; it is signalled as
// opened (in trouble) at the first failure; and it stops, its timer
// stopped, when the context ends.
func TestInputReopenWaitsOnClock(t *testing.T) {
	b := &failingBackend{}
	retriesOnClock(t, b, &b.opens, "waiting to reopen")
	if inputRetry != 2*time.Second {
		t.Errorf("inputRetry = %v, want 2s", inputRetry)
	}
}

// retriesOnClock runs input door-1 on b, whose opens counts the tries to
// open it, and checks that each is made 2 s after the one before on the
// daemon's clock, not before; that the input is signalled as opened at the
// first; and that it stops, its timer stopped, when the context ends.
// waiting names the timer the input waits on.
func retriesOnClock(t *testing.T, b devices.Backend, opens *atomic.Int32, waiting string) {
	t.Helper()
	d := bareDaemon(t)
	clk := d.clk.(*clock.Fake)
	in := config.Input{ID: "door-1"}
	d.cfg.Inputs = []config.Input{in}
	d.backend = b
	d.eng = engine.New(&config.Config{}, (&enginetest.Sink{}).Sinks(), engine.WithClock(clk))

	ctx, cancel := context.WithCancel(context.Background())
	opened := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.runInput(ctx, in, opened)
	}()
	if id := <-opened; id != "door-1" {
		t.Fatalf("opened %q, want door-1", id)
	}
	for try := int32(1); try <= 3; try++ {
		waitPending(t, clk, 1, waiting)
		if n := opens.Load(); n != try {
			t.Fatalf("%d tries to open, want %d", n, try)
		}
		clk.Advance(inputRetry - time.Nanosecond)
		time.Sleep(20 * time.Millisecond)
		if n := opens.Load(); n != try {
			t.Fatalf("tried again before 2 s: %d tries, want %d", n, try)
		}
		clk.Advance(time.Nanosecond)
		deadline := time.Now().Add(5 * time.Second)
		for opens.Load() != try+1 {
			if time.Now().After(deadline) {
				t.Fatalf("not tried again 2 s after try %d", try)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitPending(t, clk, 1, waiting)
	cancel()
	<-done
	if n := clk.Pending(); n != 0 {
		t.Errorf("input stopped: %d timers left pending", n)
	}
}

// losingBackend opens every input, on a line that is lost as soon as it
// is watched; it counts the opens.
type losingBackend struct{ failingBackend }

type losingLine struct{ id string }

func (b *losingBackend) OpenInput(spec devices.InputSpec) (devices.Input, error) {
	b.opens.Add(1)
	return losingLine{spec.ID}, nil
}

func (l losingLine) ID() string                   { return l.id }
func (l losingLine) Read() (devices.Level, error) { return devices.Low, nil }
func (l losingLine) KernelDebounce() bool         { return false }
func (l losingLine) Close() error                 { return nil }
func (l losingLine) Watch(context.Context, func(devices.Event)) error {
	return devices.ErrLineLost
}

// TestLostLineReopenWaitsOnClock: a line lost while watched is reopened
// 2 s later on the daemon's clock, not before.
func TestLostLineReopenWaitsOnClock(t *testing.T) {
	b := &losingBackend{}
	retriesOnClock(t, b, &b.opens, "waiting to reopen the lost line")
}
