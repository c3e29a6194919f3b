package simchip

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/clock"
)

// CheckNCLoopOpenIsTamper checks, on line offset of chip, that an NC loop to
// ground (closed: low, active-low: logical high) that is cut floats up to the
// pull-up: conditioning reports the activation at once and, once the loop
// stays open past stuck_after, the tamper fault loop_open, cleared when the
// loop is closed again.
func CheckNCLoopOpenIsTamper(t *testing.T, b devices.Backend, chip string, offset int) {
	t.Helper()
	s := At(t, chip, offset)
	in, err := b.OpenInput(devices.InputSpec{ID: "vault", Line: devices.LineRef{Offset: offset}, Bias: devices.BiasPullUp, ActiveLow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	// Close the loop after the request: gpio-sim applies the request's bias
	// over its simulated pull, as a real pull-up is overridden by a contact.
	s.Pull(false) // the loop is closed: the contact holds the line low
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if l, _ := in.Read(); l == devices.High {
			break
		}
	}
	log := &Recorder{}
	cond := devices.NewConditioner(devices.ConditionSpec{ID: "vault", Contact: devices.NC, StuckAfter: time.Second}, clock.Real{}, log)
	l, err := in.Read()
	if err != nil || l != devices.High {
		t.Fatalf("closed NC loop: Read = %v, %v; want high", l, err)
	}
	cond.Start(l, time.Now())
	defer cond.Stop()
	evs, _ := Watch(t.Context(), in)
	go func() {
		for ev := range evs {
			cond.Edge(ev)
		}
	}()
	s.Pull(true) // the wire is cut
	waitFault(log, devices.FaultLoopOpen, true, 5*time.Second)
	if !log.Has(devices.FaultLoopOpen, true) {
		t.Fatalf("no loop_open tamper after the loop was cut: faults %+v", log.Faults())
	}
	if sig := log.Signals(); len(sig) == 0 || !sig[0].Active {
		t.Errorf("the cut was not reported as an activation first: %+v", sig)
	}
	s.Pull(false) // repaired
	waitFault(log, devices.FaultLoopOpen, false, 5*time.Second)
	if !log.Has(devices.FaultLoopOpen, false) {
		t.Errorf("loop_open not cleared after the loop was closed again")
	}
}

// waitFault polls log until it has the fault or d has passed.
func waitFault(log *Recorder, kind devices.FaultKind, active bool, d time.Duration) {
	deadline := time.Now().Add(d)
	for !log.Has(kind, active) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// CheckOutputs checks three outputs, on the given offsets of chip: active
// high with fail-safe low, active low with fail-safe low, active high with
// fail-safe high. Each is driven to its fail-safe level when opened, follows
// Set, is at its fail-safe level when Close releases it, and a second Close
// returns nil. gpio-sim restores a line's pull when it is released, hiding
// what was driven, so afterFailSafe must make out call f between driving the
// fail-safe level and releasing the line.
func CheckOutputs(t *testing.T, b devices.Backend, chip string, offsets [3]int, afterFailSafe func(out devices.Output, f func())) {
	cases := []struct {
		name      string
		offset    int
		activeLow bool
		failSafe  devices.Level
	}{
		{"active-high fail-safe low", offsets[0], false, devices.Low},
		{"active-low fail-safe low", offsets[1], true, devices.Low},
		{"active-high fail-safe high", offsets[2], false, devices.High},
	}
	phys := func(l devices.Level, activeLow bool) int {
		if bool(l) != activeLow {
			return 1
		}
		return 0
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := At(t, chip, c.offset)
			s.Pull(phys(!c.failSafe, c.activeLow) == 1) // the released line floats away from fail-safe
			out, err := b.OpenOutput(devices.OutputSpec{ID: "relay", Line: devices.LineRef{Offset: c.offset}, ActiveLow: c.activeLow, FailSafe: c.failSafe})
			if err != nil {
				t.Fatal(err)
			}
			if v := s.Value(); v != phys(c.failSafe, c.activeLow) {
				t.Errorf("after open: physical %d, want fail-safe %d", v, phys(c.failSafe, c.activeLow))
			}
			for _, l := range []devices.Level{!c.failSafe, c.failSafe, !c.failSafe} {
				if err := out.Set(l); err != nil {
					t.Fatal(err)
				}
				if v := s.Value(); v != phys(l, c.activeLow) {
					t.Errorf("after Set(%v): physical %d, want %d", l, v, phys(l, c.activeLow))
				}
			}
			atClose := -1
			afterFailSafe(out, func() { atClose = s.Value() })
			if err := out.Close(); err != nil {
				t.Fatal(err)
			}
			if atClose != phys(c.failSafe, c.activeLow) {
				t.Errorf("at Close: physical %d, want fail-safe %d", atClose, phys(c.failSafe, c.activeLow))
			}
			if err := out.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

// CheckLostPulseIsActivation checks that a panic line's pulse lost to the
// watcher still raises the alarm. in reads l, its idle level (Low); pulse
// drives the line while nobody watches, so that some edges are lost. A
// conditioner of an alarm input, started at l before the pulse, is fed what
// Watch then delivers. The first event must come after lost edges at the
// idle level, and the conditioner must report first an activation flagged
// Inferred, with the lost_edges fault. It returns the signals reported, for
// the caller to check the last one.
func CheckLostPulseIsActivation(t *testing.T, in devices.Input, l devices.Level, pulse func()) []devices.Signal {
	t.Helper()
	log := &Recorder{}
	cond := devices.NewConditioner(devices.ConditionSpec{ID: "panic", Alarm: true}, clock.Real{}, log)
	cond.Start(l, time.Now())
	defer cond.Stop()
	pulse()
	time.Sleep(100 * time.Millisecond)
	evs, _ := Watch(t.Context(), in)
	got := Quiet(evs, 500*time.Millisecond)
	for _, ev := range got {
		cond.Edge(ev)
	}
	t.Logf("events: %+v", got)
	if len(got) == 0 || got[0].Lost == 0 || got[0].Level != devices.Low {
		t.Fatalf("events %+v, want first an edge at the idle level after lost edges", got)
	}
	sig := log.Signals()
	if len(sig) == 0 || !sig[0].Active || !sig[0].Inferred {
		t.Fatalf("signals %+v, want first an activation inferred from the lost edges", sig)
	}
	if !log.Has(devices.FaultLostEdges, true) {
		t.Errorf("no lost_edges trouble with the inferred activation: faults %+v", log.Faults())
	}
	return sig
}

// Removable returns the VM's chip, failing t when the init did not export
// its configfs directory, without which the chip cannot be unplugged.
func Removable(t testing.TB) Chip {
	t.Helper()
	c, ok := FromEnv()
	if !ok || c.Configfs == "" {
		t.Fatal("HALLGUARD_SIM_CONFIGFS not set: the VM's init must export it")
	}
	return c
}

// CheckUnplugEndsWatch unplugs c and checks that Watch, whose result done
// carries, returns an error wrapping ErrLineLost within d.
func CheckUnplugEndsWatch(t *testing.T, c Chip, done <-chan error, within time.Duration) {
	t.Helper()
	start := time.Now()
	if err := c.Unplug(); err != nil {
		t.Fatalf("unplug: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, devices.ErrLineLost) {
			t.Errorf("Watch = %v, want ErrLineLost", err)
		}
		t.Logf("Watch returned %v after %v", err, time.Since(start))
	case <-time.After(within):
		t.Fatalf("Watch still running %v after chip removal", within)
	}
}

// CheckCloseAfterRemoval closes lines in order (the backend last), failing
// t when that takes 5 s: nothing may hang on a removed chip.
func CheckCloseAfterRemoval(t *testing.T, lines ...io.Closer) {
	t.Helper()
	closed := make(chan struct{})
	go func() {
		for _, l := range lines {
			l.Close()
		}
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs after chip removal")
	}
}

// Edges drives n edges on s, up first and 20 ms apart, and calls check with
// the event each one gave and the wall-clock time just before driving it
// and just after the event arrived.
func Edges(t *testing.T, s Line, evs <-chan devices.Event, n int, check func(i int, up bool, ev devices.Event, before, after time.Time)) {
	t.Helper()
	for i := range n {
		up := i%2 == 0
		before := time.Now()
		s.Pull(up)
		ev := Next(t, evs, 2*time.Second)
		check(i, up, ev, before, time.Now())
		time.Sleep(20 * time.Millisecond)
	}
}
