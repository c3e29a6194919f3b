//go:build linux && vmtest

// Kernel tests, run inside the VM (devices/gpiocdev/vmtest) against the
// gpio-sim module, through periph's host.Init and its gpioioctl driver.
//
// The VM must provide what the gpiocdev kernel tests need (see
// devices/gpiocdev/kernel_test.go): HALLGUARD_SIM_CHIP, a gpio-sim chip of at
// least 16 lines that exists before the test binary starts (host.Init scans
// the chips once per process), HALLGUARD_SIM_BANK_SYSFS, and optionally
// HALLGUARD_SIM_CONFIGFS for TestKernelZZChipRemoval, which unplugs the chip
// and so comes last. These tests use offsets 8-15 and need a named line
// among them.
//
// What periph cannot do, and so is not tested here: kernel debounce
// (KernelDebounce is false and conditioning debounces), asking for an event
// buffer size, kernel timestamps and sequence numbers, hence exact lost-edge
// accounting: see TestKernelBurst.
package periph

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/host/v3/gpioioctl"

	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/devices/simchip"
)

const base = 8 // first sim offset these tests use

func newKernelBackend(t *testing.T, chip string) devices.Backend {
	t.Helper()
	b, err := New(Options{DefaultChip: chip, WaitTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func watchAll(t *testing.T, in devices.Input) (<-chan devices.Event, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	evs := make(chan devices.Event, 100000)
	done := make(chan error, 1)
	go func() { done <- in.Watch(ctx, func(ev devices.Event) { evs <- ev }) }()
	t.Cleanup(cancel)
	return evs, done
}

func waitEvent(t *testing.T, evs <-chan devices.Event, within time.Duration) devices.Event {
	t.Helper()
	select {
	case ev := <-evs:
		return ev
	case <-time.After(within):
		t.Fatalf("no event within %v", within)
		return devices.Event{}
	}
}

func quiet(evs <-chan devices.Event, d time.Duration) []devices.Event {
	var got []devices.Event
	for {
		select {
		case ev := <-evs:
			got = append(got, ev)
		case <-time.After(d):
			return got
		}
	}
}

// namedLine returns the registered name of a named line among offsets
// base..base+7 of chip.
func namedLine(t *testing.T, chip string) (string, int) {
	t.Helper()
	for _, c := range gpioioctl.Chips {
		if c.Name() != chip {
			continue
		}
		for o := base; o < base+8 && o < c.LineCount(); o++ {
			if n := c.ByNumber(o).Name(); n != "" {
				return n, o
			}
		}
		t.Fatalf("no named line among offsets %d-%d of %s", base, base+7, chip)
	}
	t.Fatalf("gpioioctl found no chip %s", chip)
	return "", 0
}

func TestKernelByOffsetAndName(t *testing.T) {
	chip := simchip.Name(t)
	b := newKernelBackend(t, chip)
	name, offset := namedLine(t, chip)
	s := simchip.At(t, chip, offset)
	s.Pull(true)
	for _, ref := range []devices.LineRef{
		{Offset: offset},
		{Offset: -1, Name: name},
		{Chip: chip, Offset: -1, Name: strings.TrimPrefix(name, chip+"-")},
	} {
		in, err := b.OpenInput(devices.InputSpec{ID: "line", Line: ref})
		if err != nil {
			t.Errorf("open %+v: %v", ref, err)
			continue
		}
		if l, _ := in.Read(); l != devices.High {
			t.Errorf("open %+v: Read = %v, want high", ref, l)
		}
		in.Close()
	}
	if _, err := b.OpenInput(devices.InputSpec{ID: "missing", Line: devices.LineRef{Offset: -1, Name: "hallguard-no-such-line"}}); !errors.Is(err, devices.ErrNoSuchLine) {
		t.Errorf("missing name: err = %v, want ErrNoSuchLine", err)
	}
	if _, err := b.OpenInput(devices.InputSpec{ID: "range", Line: devices.LineRef{Offset: 4096}}); !errors.Is(err, devices.ErrNoSuchLine) {
		t.Errorf("offset 4096: err = %v, want ErrNoSuchLine", err)
	}
}

func TestKernelPullUpActiveLow(t *testing.T) {
	chip := simchip.Name(t)
	b := newKernelBackend(t, chip)
	s := simchip.At(t, chip, base+1)
	s.Pull(false)
	in, err := b.OpenInput(devices.InputSpec{ID: "panic", Line: devices.LineRef{Offset: base + 1}, Bias: devices.BiasPullUp, ActiveLow: true, Debounce: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if in.KernelDebounce() {
		t.Error("KernelDebounce true: periph cannot debounce in the kernel")
	}
	if v := s.Value(); v != 1 {
		t.Errorf("physical level %d after pull-up, want 1", v)
	}
	if l, _ := in.Read(); l != devices.Low {
		t.Errorf("released: Read = %v, want low", l)
	}
	evs, _ := watchAll(t, in)
	s.Pull(false)
	if ev := waitEvent(t, evs, 2*time.Second); ev.Level != devices.High {
		t.Errorf("press event %+v, want high", ev)
	}
	s.Pull(true)
	if ev := waitEvent(t, evs, 2*time.Second); ev.Level != devices.Low {
		t.Errorf("release event %+v, want low", ev)
	}
}

// Event times are when Watch woke up (periph gives no kernel timestamp).
func TestKernelEdgesAndTimes(t *testing.T) {
	chip := simchip.Name(t)
	b := newKernelBackend(t, chip)
	s := simchip.At(t, chip, base+2)
	s.Pull(false)
	in, err := b.OpenInput(devices.InputSpec{ID: "edges", Line: devices.LineRef{Offset: base + 2}, Bias: devices.BiasPullDown})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	evs, _ := watchAll(t, in)
	for i := range 10 {
		up := i%2 == 0
		before := time.Now()
		s.Pull(up)
		ev := waitEvent(t, evs, 2*time.Second)
		after := time.Now()
		if ev.Level != devices.Level(up) || ev.Seq != uint64(i+1) || ev.Lost != 0 {
			t.Errorf("edge %d: %+v, want level %v Seq %d Lost 0", i, ev, up, i+1)
		}
		if ev.Time.Before(before) || ev.Time.After(after) {
			t.Errorf("edge %d: time %v outside [%v, %v]", i, ev.Time, before, after)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A burst queued before Watch runs overflows the kernel's 16-event buffer
// unseen (periph shows no sequence numbers). Watch still ends at the final
// level, and the queued edges that did not change it count as lost: a
// lower bound, not the true number.
func TestKernelBurst(t *testing.T) {
	const edges = 3001 // odd: the line ends high
	chip := simchip.Name(t)
	b := newKernelBackend(t, chip)
	s := simchip.At(t, chip, base+4)
	s.Pull(false)
	in, err := b.OpenInput(devices.InputSpec{ID: "burst", Line: devices.LineRef{Offset: base + 4}, Bias: devices.BiasPullDown})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for i := range edges {
		s.Pull(i%2 == 0)
	}
	evs, _ := watchAll(t, in)
	got := quiet(evs, 500*time.Millisecond)
	if len(got) == 0 {
		t.Fatal("no events")
	}
	lost := in.(LostCounter).LostEdges()
	t.Logf("%d edges written: %d events, %d counted lost", edges, len(got), lost)
	if last := got[len(got)-1]; last.Level != devices.High {
		t.Errorf("last event level %v, want high", last.Level)
	}
	if lost == 0 {
		t.Error("no lost edges counted")
	}
}

func TestKernelOutput(t *testing.T) {
	chip := simchip.Name(t)
	b := newKernelBackend(t, chip)
	cases := []struct {
		name      string
		offset    int
		activeLow bool
		failSafe  devices.Level
	}{
		{"active-high fail-safe low", base + 5, false, devices.Low},
		{"active-low fail-safe low", base + 6, true, devices.Low},
		{"active-high fail-safe high", base + 7, false, devices.High},
	}
	phys := func(l devices.Level, activeLow bool) int {
		if bool(l) != activeLow {
			return 1
		}
		return 0
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := simchip.At(t, chip, c.offset)
			s.Pull(phys(!c.failSafe, c.activeLow) == 1)
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
			// gpio-sim restores the pull on release: check before it.
			atClose := -1
			out.(*output).afterFailSafe = func() { atClose = s.Value() }
			if err := out.Close(); err != nil {
				t.Fatal(err)
			}
			if atClose != phys(c.failSafe, c.activeLow) {
				t.Errorf("at Close: physical %d, want fail-safe %d", atClose, phys(c.failSafe, c.activeLow))
			}
		})
	}
}

// faultLog records what conditioning reports.
type faultLog struct {
	mu      sync.Mutex
	signals []devices.Signal
	faults  []devices.Fault
}

func (f *faultLog) Signal(s devices.Signal) {
	f.mu.Lock()
	f.signals = append(f.signals, s)
	f.mu.Unlock()
}
func (f *faultLog) Fault(x devices.Fault) { f.mu.Lock(); f.faults = append(f.faults, x); f.mu.Unlock() }
func (f *faultLog) has(kind devices.FaultKind, active bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range f.faults {
		if x.Kind == kind && x.Active == active {
			return true
		}
	}
	return false
}

// An NC loop to ground (closed: low, active-low: logical high) that is cut
// floats up to the pull-up: conditioning reports the activation at once and,
// once the loop stays open past stuck_after, the tamper fault loop_open.
func TestKernelNCLoopOpenIsTamper(t *testing.T) {
	chip := simchip.Name(t)
	b := newKernelBackend(t, chip)
	s := simchip.At(t, chip, base+6)
	in, err := b.OpenInput(devices.InputSpec{ID: "vault", Line: devices.LineRef{Offset: base + 6}, Bias: devices.BiasPullUp, ActiveLow: true})
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
	log := &faultLog{}
	cond := devices.NewConditioner(devices.ConditionSpec{ID: "vault", Contact: devices.NC, StuckAfter: time.Second}, clock.Real{}, log)
	l, err := in.Read()
	if err != nil || l != devices.High {
		t.Fatalf("closed NC loop: Read = %v, %v; want high", l, err)
	}
	cond.Start(l, time.Now())
	defer cond.Stop()
	evs, _ := watchAll(t, in)
	go func() {
		for ev := range evs {
			cond.Edge(ev)
		}
	}()
	s.Pull(true) // the wire is cut
	deadline := time.Now().Add(5 * time.Second)
	for !log.has(devices.FaultLoopOpen, true) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !log.has(devices.FaultLoopOpen, true) {
		t.Fatalf("no loop_open tamper after the loop was cut: faults %+v", log.faults)
	}
	log.mu.Lock()
	if len(log.signals) == 0 || !log.signals[0].Active {
		t.Errorf("the cut was not reported as an activation first: %+v", log.signals)
	}
	log.mu.Unlock()
	s.Pull(false) // repaired
	deadline = time.Now().Add(5 * time.Second)
	for !log.has(devices.FaultLoopOpen, false) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !log.has(devices.FaultLoopOpen, false) {
		t.Errorf("loop_open not cleared after the loop was closed again")
	}
}

// A pulse periph saw only as edges (#11 item 2): pressed and released
// before Watch reads the first edge, so when it does the level is back at
// idle. Watch reports the edge with Lost 1 at the level it reads, and the
// conditioner of an alarm input reports the activation hidden in it,
// flagged Inferred, with lost_edges as well. (periph reads one edge per
// WaitForEdge, so the release that follows counts as another missed pulse:
// an extra press on the same incident, never a missed one.)
func TestKernelMissedPulseOnPanicLineIsAnActivation(t *testing.T) {
	chip := simchip.Name(t)
	b := newKernelBackend(t, chip)
	s := simchip.At(t, chip, base+3)
	s.Pull(true) // released: the NO contact is open, the pull-up holds the line high
	in, err := b.OpenInput(devices.InputSpec{ID: "panic", Line: devices.LineRef{Offset: base + 3}, Bias: devices.BiasPullUp, ActiveLow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	l, _ := in.Read()
	if l != devices.Low {
		t.Fatalf("released: Read = %v, want low", l)
	}
	log := &faultLog{}
	cond := devices.NewConditioner(devices.ConditionSpec{ID: "panic", Alarm: true}, clock.Real{}, log)
	cond.Start(l, time.Now())
	defer cond.Stop()
	s.Pull(false) // pressed
	time.Sleep(30 * time.Millisecond)
	s.Pull(true) // released before anyone read the level
	time.Sleep(100 * time.Millisecond)
	evs, _ := watchAll(t, in)
	got := quiet(evs, 500*time.Millisecond)
	for _, ev := range got {
		cond.Edge(ev)
	}
	t.Logf("events: %+v", got)
	if len(got) == 0 || got[0].Lost == 0 || got[0].Level != devices.Low {
		t.Fatalf("events %+v, want first an edge at the idle level with Lost set", got)
	}
	log.mu.Lock()
	sig := append([]devices.Signal(nil), log.signals...)
	log.mu.Unlock()
	if len(sig) == 0 || !sig[0].Active || !sig[0].Inferred {
		t.Fatalf("signals %+v, want first an activation inferred from the lost edge", sig)
	}
	if !log.has(devices.FaultLostEdges, true) {
		t.Errorf("no lost_edges trouble with the inferred activation: faults %+v", log.faults)
	}
	if last := sig[len(sig)-1]; last.Active {
		t.Errorf("last signal %+v, want inactive (the line is released)", last)
	}
}

// On kernels where a removed chip's line fd fails reads at once (ENODEV),
// Watch sees WaitForEdge return early and reports ErrLineLost. Keep it last.
func TestKernelZZChipRemoval(t *testing.T) {
	sc, ok := simchip.FromEnv()
	if !ok || sc.Configfs == "" {
		t.Fatal("HALLGUARD_SIM_CONFIGFS not set: the VM's init must export it")
	}
	chip := simchip.Name(t)
	b := newKernelBackend(t, chip)
	in, err := b.OpenInput(devices.InputSpec{ID: "doomed", Line: devices.LineRef{Offset: base}, Bias: devices.BiasPullUp})
	if err != nil {
		t.Fatal(err)
	}
	_, done := watchAll(t, in)
	time.Sleep(200 * time.Millisecond) // let WaitForEdge set up its file
	start := time.Now()
	if err := sc.Unplug(); err != nil {
		t.Fatalf("unplug: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, devices.ErrLineLost) {
			t.Errorf("Watch = %v, want ErrLineLost", err)
		}
		t.Logf("Watch returned %v after %v", err, time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("Watch still running 5s after chip removal")
	}
	closed := make(chan struct{})
	go func() {
		in.Close()
		b.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs after chip removal")
	}
}
