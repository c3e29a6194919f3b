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
	"errors"
	"strings"
	"testing"
	"time"

	"periph.io/x/host/v3/gpioioctl"

	"github.com/hallguard/hallguard/devices"
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
	evs, _ := simchip.Watch(t.Context(), in)
	s.Pull(false)
	if ev := simchip.Next(t, evs, 2*time.Second); ev.Level != devices.High {
		t.Errorf("press event %+v, want high", ev)
	}
	s.Pull(true)
	if ev := simchip.Next(t, evs, 2*time.Second); ev.Level != devices.Low {
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
	evs, _ := simchip.Watch(t.Context(), in)
	simchip.Edges(t, s, evs, 10, func(i int, up bool, ev devices.Event, before, after time.Time) {
		if ev.Level != devices.Level(up) || ev.Seq != uint64(i+1) || ev.Lost != 0 {
			t.Errorf("edge %d: %+v, want level %v Seq %d Lost 0", i, ev, up, i+1)
		}
		if ev.Time.Before(before) || ev.Time.After(after) {
			t.Errorf("edge %d: time %v outside [%v, %v]", i, ev.Time, before, after)
		}
	})
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
	evs, _ := simchip.Watch(t.Context(), in)
	got := simchip.Quiet(evs, 500*time.Millisecond)
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
	simchip.CheckOutputs(t, b, chip, [3]int{base + 5, base + 6, base + 7}, func(out devices.Output, f func()) { out.(*devices.LineOutput).Driver().(*output).afterFailSafe = f })
}

// An NC loop to ground that is cut is a tamper (simchip.CheckNCLoopOpenIsTamper).
func TestKernelNCLoopOpenIsTamper(t *testing.T) {
	chip := simchip.Name(t)
	simchip.CheckNCLoopOpenIsTamper(t, newKernelBackend(t, chip), chip, base+6)
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
	sig := simchip.CheckLostPulseIsActivation(t, in, l, func() {
		s.Pull(false) // pressed
		time.Sleep(30 * time.Millisecond)
		s.Pull(true) // released before anyone read the level
	})
	if last := sig[len(sig)-1]; last.Active {
		t.Errorf("last signal %+v, want inactive (the line is released)", last)
	}
}

// On kernels where a removed chip's line fd fails reads at once (ENODEV),
// Watch sees WaitForEdge return early and reports ErrLineLost. Keep it last.
func TestKernelZZChipRemoval(t *testing.T) {
	sc := simchip.Removable(t)
	chip := simchip.Name(t)
	b := newKernelBackend(t, chip)
	in, err := b.OpenInput(devices.InputSpec{ID: "doomed", Line: devices.LineRef{Offset: base}, Bias: devices.BiasPullUp})
	if err != nil {
		t.Fatal(err)
	}
	_, done := simchip.Watch(t.Context(), in)
	time.Sleep(200 * time.Millisecond) // let WaitForEdge set up its file
	simchip.CheckUnplugEndsWatch(t, sc, done, 5*time.Second)
	simchip.CheckCloseAfterRemoval(t, in, b)
}
