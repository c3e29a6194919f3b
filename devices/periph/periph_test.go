package periph

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"

	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/devices/simchip"
)

// testPin is a fake pin the suite can drive.
type testPin interface {
	gpio.PinIO
	// edge makes the pin's level l, with an edge event (l may equal the
	// current level: a pulse too short to read).
	edge(l gpio.Level)
	// level returns the pin's level.
	level() gpio.Level
}

// fakePin is a gpio.PinIO in the manner of periph's gpiotest.Pin (edges come
// through a channel), with what gpiotest lacks: Halt, Close, a level change
// without an edge and a dead line.
type fakePin struct {
	name  string
	edges chan gpio.Level

	mu       sync.Mutex
	l        gpio.Level
	pull     gpio.Pull
	edgeMode gpio.Edge
	closed   int
	dead     bool // WaitForEdge fails at once, as gpioioctl's does on ENODEV
}

func newFakePin(name string) *fakePin {
	return &fakePin{name: name, edges: make(chan gpio.Level, 64)}
}

func (p *fakePin) String() string   { return p.name }
func (p *fakePin) Halt() error      { return nil }
func (p *fakePin) Name() string     { return p.name }
func (p *fakePin) Number() int      { return -1 }
func (p *fakePin) Function() string { return "" }

func (p *fakePin) In(pull gpio.Pull, edge gpio.Edge) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pull, p.edgeMode = pull, edge
	switch pull {
	case gpio.PullUp:
		p.l = gpio.High
	case gpio.PullDown:
		p.l = gpio.Low
	}
	return nil
}

func (p *fakePin) Read() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.l
}

func (p *fakePin) WaitForEdge(timeout time.Duration) bool {
	p.mu.Lock()
	dead := p.dead
	p.mu.Unlock()
	if dead {
		return false
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l := <-p.edges:
		p.set(l)
		return true
	case <-t.C:
		return false
	}
}

func (p *fakePin) Pull() gpio.Pull        { return p.pull }
func (p *fakePin) DefaultPull() gpio.Pull { return gpio.PullNoChange }

func (p *fakePin) Out(l gpio.Level) error {
	p.set(l)
	return nil
}

func (p *fakePin) PWM(gpio.Duty, physic.Frequency) error { return errors.New("no PWM") }

func (p *fakePin) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed++
}

func (p *fakePin) set(l gpio.Level) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.l = l
}

func (p *fakePin) edge(l gpio.Level) { p.edges <- l }
func (p *fakePin) level() gpio.Level { return p.Read() }

func (p *fakePin) closes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// chip is a set of fake pins, by offset, on "gpiochip0".
type chip []testPin

func testBackend(t *testing.T, c chip) devices.Backend {
	t.Helper()
	b, err := New(Options{
		Init: func() error { return nil },
		ByName: func(name string) gpio.PinIO {
			for _, p := range c {
				if p.Name() == name {
					return p
				}
			}
			return nil
		},
		ByOffset: func(chipName string, offset int) gpio.PinIO {
			if chipName != "gpiochip0" || offset < 0 || offset >= len(c) {
				return nil
			}
			return c[offset]
		},
		Clock:       clock.Real{},
		WaitTimeout: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func byName(n string) devices.LineRef { return devices.LineRef{Offset: -1, Name: n} }

// next waits 5 s for an event.
func next(t *testing.T, evs <-chan devices.Event) devices.Event {
	t.Helper()
	return simchip.Next(t, evs, 5*time.Second)
}

func none(t *testing.T, evs <-chan devices.Event, d time.Duration) {
	t.Helper()
	select {
	case ev := <-evs:
		t.Fatalf("unexpected event %+v", ev)
	case <-time.After(d):
	}
}

// runSuite checks the backend against pins made by newPin.
func runSuite(t *testing.T, newPin func(name string) testPin) {
	t.Run("edges in order", func(t *testing.T) {
		p := newPin("PANIC1")
		b := testBackend(t, chip{p})
		in, err := b.OpenInput(devices.InputSpec{ID: "panic1", Line: byName("PANIC1"), Bias: devices.BiasPullDown})
		if err != nil {
			t.Fatal(err)
		}
		if l, _ := in.Read(); l != devices.Low {
			t.Fatalf("initial level %v, want low", l)
		}
		evs, _ := simchip.Watch(context.Background(), in)
		for i := 1; i <= 6; i++ {
			before := time.Now()
			want := gpio.Level(i%2 == 1)
			p.edge(want)
			ev := next(t, evs)
			if ev.Line != "panic1" || ev.Level != devices.Level(want) || ev.Seq != uint64(i) || ev.Lost != 0 {
				t.Errorf("event %d = %+v, want level %v seq %d", i, ev, want, i)
			}
			if ev.Time.Before(before) || ev.Time.After(time.Now()) {
				t.Errorf("event %d time %v not between edge and receipt", i, ev.Time)
			}
		}
	})
	t.Run("active-low", func(t *testing.T) {
		p := newPin("PANIC2")
		b := testBackend(t, chip{p})
		in, err := b.OpenInput(devices.InputSpec{ID: "panic2", Line: byName("PANIC2"), Bias: devices.BiasPullUp, ActiveLow: true})
		if err != nil {
			t.Fatal(err)
		}
		if l, _ := in.Read(); l != devices.Low {
			t.Errorf("released (pulled up) reads %v, want logical low", l)
		}
		evs, _ := simchip.Watch(context.Background(), in)
		p.edge(gpio.Low) // pressed: shorted to ground
		if ev := next(t, evs); ev.Level != devices.High {
			t.Errorf("press event level %v, want high", ev.Level)
		}
		p.edge(gpio.High)
		if ev := next(t, evs); ev.Level != devices.Low {
			t.Errorf("release event level %v, want low", ev.Level)
		}
	})
	t.Run("pull", func(t *testing.T) {
		for bias, want := range map[devices.Bias]gpio.Pull{
			devices.BiasPullUp: gpio.PullUp, devices.BiasPullDown: gpio.PullDown,
			devices.BiasDisabled: gpio.Float, devices.BiasAsIs: gpio.PullNoChange,
		} {
			p := newPin("P")
			b := testBackend(t, chip{p})
			in, err := b.OpenInput(devices.InputSpec{ID: "p", Line: byName("P"), Bias: bias})
			if err != nil {
				t.Fatal(err)
			}
			if p.Pull() != want {
				t.Errorf("bias %q: pin pull %v, want %v", bias, p.Pull(), want)
			}
			in.Close()
		}
		b := testBackend(t, chip{newPin("P")})
		if _, err := b.OpenInput(devices.InputSpec{ID: "p", Line: byName("P"), Bias: "sideways"}); err == nil || !strings.Contains(err.Error(), "sideways") {
			t.Errorf("unknown bias: err = %v", err)
		}
	})
	t.Run("close stops watch promptly", func(t *testing.T) {
		p := newPin("SMOKE")
		b := testBackend(t, chip{p})
		in, err := b.OpenInput(devices.InputSpec{ID: "smoke", Line: byName("SMOKE")})
		if err != nil {
			t.Fatal(err)
		}
		_, done := simchip.Watch(context.Background(), in)
		time.Sleep(30 * time.Millisecond)
		start := time.Now()
		closed := make(chan error, 1)
		go func() { closed <- in.Close() }()
		if err := simchip.Result(t, done, time.Second); err != nil {
			t.Errorf("Watch after Close = %v, want nil", err)
		}
		select {
		case err := <-closed:
			if err != nil {
				t.Errorf("Close = %v", err)
			}
		case <-time.After(time.Second):
			t.Fatal("Close did not return within 1s")
		}
		t.Logf("Close took %v", time.Since(start))
		if err := in.Close(); err != nil {
			t.Errorf("second Close = %v, want nil", err)
		}
		if c, ok := p.(interface{ closes() int }); ok && c.closes() != 1 {
			t.Errorf("pin released %d times, want 1", c.closes())
		}
		// The pin is free again.
		in2, err := b.OpenInput(devices.InputSpec{ID: "smoke", Line: byName("SMOKE")})
		if err != nil {
			t.Fatalf("reopen after Close: %v", err)
		}
		in2.Close()
	})
	t.Run("context cancel", func(t *testing.T) {
		b := testBackend(t, chip{newPin("Q")})
		in, err := b.OpenInput(devices.InputSpec{ID: "q", Line: byName("Q")})
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		ctx, cancel := context.WithCancel(context.Background())
		_, done := simchip.Watch(ctx, in)
		cancel()
		if err := simchip.Result(t, done, time.Second); err != nil {
			t.Errorf("Watch after cancel = %v, want nil", err)
		}
	})
	t.Run("short pulse counted as lost", func(t *testing.T) {
		p := newPin("PULSE")
		b := testBackend(t, chip{p})
		in, err := b.OpenInput(devices.InputSpec{ID: "pulse", Line: byName("PULSE"), Bias: devices.BiasPullDown})
		if err != nil {
			t.Fatal(err)
		}
		evs, _ := simchip.Watch(context.Background(), in)
		p.edge(gpio.Low) // an edge, but the level is back before it is read
		if ev := next(t, evs); ev.Level != devices.Low || ev.Lost != 1 {
			t.Errorf("event %+v, want level low with Lost 1", ev)
		}
		if lc := in.(LostCounter); lc.LostEdges() != 1 {
			t.Errorf("LostEdges = %d, want 1", lc.LostEdges())
		}
	})
	t.Run("outputs", func(t *testing.T) {
		cases := []struct {
			name      string
			activeLow bool
			failSafe  devices.Level
		}{
			{"active-high fail-safe low", false, devices.Low},
			{"active-high fail-safe high", false, devices.High},
			{"active-low fail-safe low", true, devices.Low},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				p := newPin("RELAY")
				b := testBackend(t, chip{p})
				phys := func(l devices.Level) gpio.Level { return gpio.Level(bool(l) != c.activeLow) }
				o, err := b.OpenOutput(devices.OutputSpec{ID: "relay", Line: byName("RELAY"), ActiveLow: c.activeLow, FailSafe: c.failSafe})
				if err != nil {
					t.Fatal(err)
				}
				if p.level() != phys(c.failSafe) {
					t.Errorf("after open: %v, want fail-safe %v", p.level(), phys(c.failSafe))
				}
				if err := o.Set(!c.failSafe); err != nil {
					t.Fatal(err)
				}
				if p.level() != phys(!c.failSafe) {
					t.Errorf("after Set(%v): %v, want %v", !c.failSafe, p.level(), phys(!c.failSafe))
				}
				if err := o.Close(); err != nil {
					t.Fatal(err)
				}
				if p.level() != phys(c.failSafe) {
					t.Errorf("after Close: %v, want fail-safe %v", p.level(), phys(c.failSafe))
				}
				if err := o.Close(); err != nil {
					t.Errorf("second Close = %v", err)
				}
				if err := o.Set(c.failSafe); !errors.Is(err, devices.ErrClosed) {
					t.Errorf("Set after Close = %v, want ErrClosed", err)
				}
			})
		}
	})
	t.Run("backend close drives outputs fail-safe", func(t *testing.T) {
		p, q := newPin("SIREN"), newPin("DOOR")
		b := testBackend(t, chip{p, q})
		o, err := b.OpenOutput(devices.OutputSpec{ID: "siren", Line: byName("SIREN"), FailSafe: devices.Low})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.OpenInput(devices.InputSpec{ID: "door", Line: byName("DOOR")}); err != nil {
			t.Fatal(err)
		}
		o.Set(devices.High)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if p.level() != gpio.Low {
			t.Errorf("siren %v after backend Close, want low", p.level())
		}
		if _, err := b.OpenInput(devices.InputSpec{ID: "door", Line: byName("DOOR")}); !errors.Is(err, errBackendClosed) {
			t.Errorf("open after Close = %v, want errBackendClosed", err)
		}
	})
	t.Run("lookup", func(t *testing.T) {
		b := testBackend(t, chip{newPin("A"), newPin("gpiochip0-B")})
		cases := []struct {
			name       string
			ref        devices.LineRef
			noSuchLine bool
			errHas     string
		}{
			{name: "by name", ref: byName("A")},
			{name: "by offset", ref: devices.LineRef{Offset: 1}},
			{name: "by offset and name", ref: devices.LineRef{Offset: 0, Name: "A"}},
			{name: "by name on chip (deduplicated name)", ref: devices.LineRef{Chip: "gpiochip0", Offset: -1, Name: "B"}},
			{name: "unknown name", ref: byName("NOPE"), noSuchLine: true, errHas: `"NOPE"`},
			{name: "unknown name on chip", ref: devices.LineRef{Chip: "gpiochip0", Offset: -1, Name: "NOPE"}, noSuchLine: true, errHas: `"NOPE" on gpiochip0`},
			{name: "offset out of range", ref: devices.LineRef{Offset: 7}, noSuchLine: true, errHas: "line 7 on gpiochip0"},
			{name: "offset on unknown chip", ref: devices.LineRef{Chip: "gpiochip9", Offset: 0}, noSuchLine: true, errHas: "gpiochip9"},
			{name: "offset with wrong name", ref: devices.LineRef{Offset: 0, Name: "B"}, noSuchLine: true, errHas: `named "A", not "B"`},
			{name: "nothing", ref: devices.LineRef{Offset: -1}, noSuchLine: true, errHas: "neither"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				in, err := b.OpenInput(devices.InputSpec{ID: "x", Line: c.ref})
				if c.errHas == "" {
					if err != nil {
						t.Fatalf("open %+v: %v", c.ref, err)
					}
					in.Close()
					return
				}
				if err == nil || !strings.Contains(err.Error(), c.errHas) || errors.Is(err, devices.ErrNoSuchLine) != c.noSuchLine {
					t.Errorf("open %+v: err = %v, want one containing %q (ErrNoSuchLine %t)", c.ref, err, c.errHas, c.noSuchLine)
				}
			})
		}
	})
	t.Run("open twice refused", func(t *testing.T) {
		b := testBackend(t, chip{newPin("A")})
		in, err := b.OpenInput(devices.InputSpec{ID: "first", Line: byName("A")})
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		if _, err := b.OpenOutput(devices.OutputSpec{ID: "second", Line: devices.LineRef{Offset: 0}}); err == nil || !strings.Contains(err.Error(), "already open as first") {
			t.Errorf("second open: err = %v", err)
		}
	})
}

func TestBackendWithFakePin(t *testing.T) {
	runSuite(t, func(name string) testPin { return newFakePin(name) })
}

// A level change no edge reported is delivered after a timeout; its edge,
// arriving late, is not counted as lost.
func TestLevelChangeWithoutEdge(t *testing.T) {
	p := newFakePin("SMOKE")
	b := testBackend(t, chip{p})
	in, err := b.OpenInput(devices.InputSpec{ID: "smoke", Line: byName("SMOKE"), Bias: devices.BiasPullDown})
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := simchip.Watch(context.Background(), in)
	p.set(gpio.High)
	if ev := next(t, evs); ev.Level != devices.High || ev.Lost != 0 || ev.Seq != 1 {
		t.Errorf("polled change %+v, want high, Seq 1, Lost 0", ev)
	}
	p.edge(gpio.High) // the late edge
	none(t, evs, 60*time.Millisecond)
	p.edge(gpio.Low)
	if ev := next(t, evs); ev.Level != devices.Low || ev.Lost != 0 || ev.Seq != 2 {
		t.Errorf("next edge %+v, want low, Seq 2, Lost 0", ev)
	}
	if in.(LostCounter).LostEdges() != 0 {
		t.Errorf("LostEdges = %d, want 0", in.(LostCounter).LostEdges())
	}
}

// WaitForEdge failing without waiting, as gpioioctl's does once the chip is
// gone, ends Watch with ErrLineLost.
func TestLineLost(t *testing.T) {
	p := newFakePin("PANIC")
	b := testBackend(t, chip{p})
	in, err := b.OpenInput(devices.InputSpec{ID: "panic", Line: byName("PANIC")})
	if err != nil {
		t.Fatal(err)
	}
	_, done := simchip.Watch(context.Background(), in)
	p.mu.Lock()
	p.dead = true
	p.mu.Unlock()
	if err := simchip.Result(t, done, time.Second); !errors.Is(err, devices.ErrLineLost) {
		t.Errorf("Watch = %v, want ErrLineLost", err)
	}
	if err := in.Close(); err != nil {
		t.Errorf("Close after loss = %v", err)
	}
	if p.closes() != 1 {
		t.Errorf("pin released %d times, want 1", p.closes())
	}
}

func TestSecondWatch(t *testing.T) {
	b := testBackend(t, chip{newFakePin("A")})
	in, _ := b.OpenInput(devices.InputSpec{ID: "a", Line: byName("A")})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, done := simchip.Watch(ctx, in)
	deadline := time.Now().Add(time.Second)
	for !in.(*input).watching.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := in.Watch(ctx, func(devices.Event) {}); !errors.Is(err, errWatching) {
		t.Errorf("second Watch = %v, want errWatching", err)
	}
	cancel()
	simchip.Result(t, done, time.Second)
}

func TestNewInitError(t *testing.T) {
	boom := errors.New("boom")
	if _, err := New(Options{Init: func() error { return boom }}); !errors.Is(err, boom) {
		t.Errorf("New = %v, want the Init error wrapped", err)
	}
}

func TestKernelDebounceFalse(t *testing.T) {
	b := testBackend(t, chip{newFakePin("A")})
	in, _ := b.OpenInput(devices.InputSpec{ID: "a", Line: byName("A"), Debounce: 30 * time.Millisecond})
	defer in.Close()
	if in.KernelDebounce() {
		t.Error("KernelDebounce = true")
	}
}
