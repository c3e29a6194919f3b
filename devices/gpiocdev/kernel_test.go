//go:build linux && vmtest

// Kernel tests, run inside the VM (devices/gpiocdev/vmtest) against the
// gpio-sim module.
//
// The VM must provide:
//   - HALLGUARD_SIM_CHIP: the gpio-sim chip, "gpiochipN" (or "/dev/gpiochipN"),
//     with at least 16 lines. These tests use offsets 0-7 and the periph
//     package's use 8-15, so the two can even share a chip. TestKernelByName
//     needs a named line among 0-7 (configfs .../bankX/lineY/name).
//   - HALLGUARD_SIM_BANK_SYSFS: the directory holding sim_gpioK/{pull,value}
//     (if unset, /sys/devices/platform/gpio-sim.*/gpiochipN is globbed).
//   - HALLGUARD_SIM_CONFIGFS (optional): the chip's configfs directory.
//     TestKernelZZChipRemoval writes 0 to its "live" to unplug the chip; the
//     chip stays gone, so that test is last in this file and later tests
//     (unit tests in files sorted after this one) do not need the chip.
package gpiocdev

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/simchip"
)

func newKernelBackend(t *testing.T, opts Options) devices.Backend {
	t.Helper()
	b, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestKernelByOffset(t *testing.T) {
	chip := simchip.Name(t)
	b := newKernelBackend(t, Options{DefaultChip: chip})
	s := simchip.At(t, chip, 0)
	s.Pull(true)
	in, err := b.OpenInput(devices.InputSpec{ID: "byoffset", Line: devices.LineRef{Offset: 0}})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if l, err := in.Read(); err != nil || l != devices.High {
		t.Errorf("Read = %v, %v; want high (pulled up)", l, err)
	}
	s.Pull(false)
	time.Sleep(10 * time.Millisecond)
	if l, err := in.Read(); err != nil || l != devices.Low {
		t.Errorf("Read = %v, %v; want low (pulled down)", l, err)
	}
	if _, err := b.OpenInput(devices.InputSpec{ID: "range", Line: devices.LineRef{Chip: chip, Offset: 4096}}); !errors.Is(err, devices.ErrNoSuchLine) {
		t.Errorf("offset 4096: err = %v, want ErrNoSuchLine", err)
	}
}

func TestKernelByName(t *testing.T) {
	chip := simchip.Name(t)
	names, err := sysFinder{}.Lines(chip)
	if err != nil {
		t.Fatal(err)
	}
	offset := -1
	for o := 0; o < 8 && o < len(names); o++ {
		if names[o] != "" {
			offset = o
			break
		}
	}
	if offset < 0 {
		t.Fatalf("no named line among offsets 0-7 of %s: name one in configfs (bankX/lineY/name)", chip)
	}
	name := names[offset]
	b := newKernelBackend(t, Options{})
	s := simchip.At(t, chip, offset)
	s.Pull(true)
	for _, ref := range []devices.LineRef{
		{Chip: chip, Offset: -1, Name: name},
		{Offset: -1, Name: name}, // any chip (the name must be unique)
		{Chip: chip, Offset: offset, Name: name},
	} {
		in, err := b.OpenInput(devices.InputSpec{ID: "byname", Line: ref})
		if err != nil && ref.Chip == "" && strings.Contains(err.Error(), "ambiguous") {
			t.Logf("open %+v: %v (another chip has the same line name)", ref, err)
			continue
		}
		if err != nil {
			t.Errorf("open %+v: %v", ref, err)
			continue
		}
		if l, err := in.Read(); err != nil || l != devices.High {
			t.Errorf("open %+v: Read = %v, %v; want high", ref, l, err)
		}
		in.Close()
	}
	_, err = b.OpenInput(devices.InputSpec{ID: "missing", Line: devices.LineRef{Chip: chip, Offset: -1, Name: "hallguard-no-such-line"}})
	if !errors.Is(err, devices.ErrNoSuchLine) || !strings.Contains(err.Error(), "hallguard-no-such-line") {
		t.Errorf("missing name: err = %v, want ErrNoSuchLine naming it", err)
	}
}

// A released NO button on a pulled-up active-low input reads logical Low;
// pressing it (shorting to ground: sim pull-down) gives a High event.
func TestKernelPullUpActiveLow(t *testing.T) {
	chip := simchip.Name(t)
	b := newKernelBackend(t, Options{DefaultChip: chip})
	s := simchip.At(t, chip, 1)
	s.Pull(false) // the request's bias must override this
	in, err := b.OpenInput(devices.InputSpec{ID: "panic", Line: devices.LineRef{Offset: 1}, Bias: devices.BiasPullUp, ActiveLow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if v := s.Value(); v != 1 {
		t.Errorf("physical level %d after pull-up request, want 1", v)
	}
	if l, err := in.Read(); err != nil || l != devices.Low {
		t.Errorf("released: Read = %v, %v; want low", l, err)
	}
	evs, _ := simchip.Watch(t.Context(), in)
	s.Pull(false) // press
	if ev := simchip.Next(t, evs, 2*time.Second); ev.Level != devices.High || ev.Line != "panic" {
		t.Errorf("press event %+v, want panic high", ev)
	}
	s.Pull(true) // release
	if ev := simchip.Next(t, evs, 2*time.Second); ev.Level != devices.Low {
		t.Errorf("release event %+v, want low", ev)
	}
}

func TestKernelEdgesAndTimestamps(t *testing.T) {
	chip := simchip.Name(t)
	b := newKernelBackend(t, Options{DefaultChip: chip})
	s := simchip.At(t, chip, 2)
	s.Pull(false)
	in, err := b.OpenInput(devices.InputSpec{ID: "edges", Line: devices.LineRef{Offset: 2}, Bias: devices.BiasPullDown})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if in.KernelDebounce() {
		t.Error("KernelDebounce true without Debounce")
	}
	evs, _ := simchip.Watch(t.Context(), in)
	const slack = 5 * time.Millisecond
	var prevSeq uint64
	simchip.Edges(t, s, evs, 10, func(i int, up bool, ev devices.Event, before, after time.Time) {
		if ev.Level != devices.Level(up) {
			t.Errorf("edge %d: level %v, want %v", i, ev.Level, devices.Level(up))
		}
		if ev.Lost != 0 || (prevSeq != 0 && ev.Seq != prevSeq+1) {
			t.Errorf("edge %d: Seq %d (previous %d) Lost %d; want consecutive, none lost", i, ev.Seq, prevSeq, ev.Lost)
		}
		prevSeq = ev.Seq
		if ev.Time.Before(before.Add(-slack)) || ev.Time.After(after.Add(slack)) {
			t.Errorf("edge %d: time %v outside [%v, %v] (±%v)", i, ev.Time, before, after, slack)
		}
	})
}

// The kernel debouncer (jiffies based) turns a quick burst of bounces into
// one event at the final level.
func TestKernelDebounce(t *testing.T) {
	const period = 50 * time.Millisecond
	chip := simchip.Name(t)
	b := newKernelBackend(t, Options{DefaultChip: chip})
	s := simchip.At(t, chip, 3)
	s.Pull(false)
	in, err := b.OpenInput(devices.InputSpec{ID: "bouncy", Line: devices.LineRef{Offset: 3}, Bias: devices.BiasPullDown, Debounce: period})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if !in.KernelDebounce() {
		t.Fatal("KernelDebounce false with Debounce set: kernel refused to debounce")
	}
	evs, _ := simchip.Watch(t.Context(), in)
	start := time.Now()
	for i := range 9 { // up, down, ..., up: ends pressed
		s.Pull(i%2 == 0)
	}
	burst := time.Since(start)
	if burst > period/2 {
		t.Skipf("burst of 9 writes took %v, too slow for a %v debounce on this VM", burst, period)
	}
	got := simchip.Quiet(evs, 4*period)
	if len(got) != 1 || got[0].Level != devices.High {
		t.Fatalf("burst of 9 bounces (%v) gave %d events %+v, want one high", burst, len(got), got)
	}
	t.Logf("burst %v; debounced edge stamped %v after it started", burst, got[0].Time.Sub(start))
}

// Many more edges than the 16-entry buffer asked for, queued before Watch
// drains them: what is not delivered is counted as lost.
//
// delivered+lost equals the kernel's LineSeqno of the last event, exactly.
// It may be less than the edges written: gpio-sim raises its interrupt
// through irq_sim/irq_work and the cdev edge handler is threaded, so edges
// that come faster than the handler runs merge into one event before the
// kernel numbers them. The last event always carries the final level.
func TestKernelBurstLostEdges(t *testing.T) {
	const edges = 3001 // odd: the line ends high, unlike where it started
	chip := simchip.Name(t)
	b := newKernelBackend(t, Options{DefaultChip: chip, ProbeInterval: -1})
	s := simchip.At(t, chip, 4)
	s.Pull(false)
	in, err := b.OpenInput(devices.InputSpec{ID: "burst", Line: devices.LineRef{Offset: 4}, Bias: devices.BiasPullDown, EventBuffer: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for i := range edges {
		s.Pull(i%2 == 0)
	}
	time.Sleep(200 * time.Millisecond) // let the kernel and the handler settle
	evs, _ := simchip.Watch(t.Context(), in)
	got := simchip.Quiet(evs, 500*time.Millisecond)
	if len(got) == 0 {
		t.Fatal("no events")
	}
	var lost uint64
	for _, ev := range got {
		lost += ev.Lost
	}
	last := got[len(got)-1]
	t.Logf("%d edges written: %d delivered, %d lost, last Seq %d", edges, len(got), lost, last.Seq)
	if lost == 0 {
		t.Error("no lost edges counted")
	}
	lc, ok := in.(LostCounter)
	if !ok || lc.LostEdges() != lost {
		t.Errorf("LostEdges() does not match the sum of Event.Lost (%d)", lost)
	}
	if uint64(len(got))+lost != last.Seq {
		t.Errorf("delivered %d + lost %d != last Seq %d", len(got), lost, last.Seq)
	}
	if last.Seq > edges {
		t.Errorf("last Seq %d > %d edges written", last.Seq, edges)
	}
	if last.Level != devices.High {
		t.Errorf("last event level %v, want high (the final level)", last.Level)
	}
}

func TestKernelOutput(t *testing.T) {
	chip := simchip.Name(t)
	b := newKernelBackend(t, Options{DefaultChip: chip})
	simchip.CheckOutputs(t, b, chip, [3]int{5, 6, 7}, func(out devices.Output, f func()) { out.(*devices.LineOutput).Driver().(*output).afterFailSafe = f })
}

// An NC loop to ground that is cut is a tamper (simchip.CheckNCLoopOpenIsTamper).
func TestKernelNCLoopOpenIsTamper(t *testing.T) {
	chip := simchip.Name(t)
	simchip.CheckNCLoopOpenIsTamper(t, newKernelBackend(t, Options{DefaultChip: chip}), chip, 6)
}

// A pulse lost on a panic line (#11 item 2): its press is dropped from the
// input's full 2-event queue (which, like the kernel's buffer, keeps the
// newest; the kernel's own is 16 whatever is asked, as go-gpiocdev v0.9.1
// does not pass the size on), so the release that follows comes after a
// seqno gap, at the idle level. The conditioner of an alarm input
// reports the activation hidden in the gap, flagged Inferred, before that
// release, and raises lost_edges as well.
func TestKernelSeqnoGapOnPanicLineIsAnActivation(t *testing.T) {
	chip := simchip.Name(t)
	b := newKernelBackend(t, Options{DefaultChip: chip, ProbeInterval: -1})
	s := simchip.At(t, chip, 7)
	in, err := b.OpenInput(devices.InputSpec{ID: "panic", Line: devices.LineRef{Offset: 7}, Bias: devices.BiasPullUp, ActiveLow: true, EventBuffer: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	s.Pull(true) // released: the NO contact is open, the pull-up holds the line high
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if l, _ := in.Read(); l == devices.Low {
			break
		}
	}
	l, err := in.Read()
	if err != nil || l != devices.Low {
		t.Fatalf("released: Read = %v, %v; want low", l, err)
	}
	// Before Watch drains anything: press, release, press. The queue of 2
	// keeps the newest two, the release (after a gap of one) and the press;
	// the kernel numbered all three.
	sig := simchip.CheckLostPulseIsActivation(t, in, l, func() {
		for _, up := range []bool{false, true, false} {
			s.Pull(up)
			time.Sleep(30 * time.Millisecond) // apart, so that gpio-sim does not merge them
		}
	})
	if last := sig[len(sig)-1]; !last.Active {
		t.Errorf("last signal %+v, want active (the line is pressed)", last)
	}
	s.Pull(true)
}

// Unplugging the chip ends Watch with ErrLineLost within a few probe
// intervals, and Read, Set and Close neither hang nor panic. Keep it last.
func TestKernelZZChipRemoval(t *testing.T) {
	sc := simchip.Removable(t)
	const probe = 200 * time.Millisecond
	chip := simchip.Name(t)
	b := newKernelBackend(t, Options{DefaultChip: chip, ProbeInterval: probe})
	in, err := b.OpenInput(devices.InputSpec{ID: "doomed", Line: devices.LineRef{Offset: 0}, Bias: devices.BiasPullUp})
	if err != nil {
		t.Fatal(err)
	}
	out, err := b.OpenOutput(devices.OutputSpec{ID: "doomed-out", Line: devices.LineRef{Offset: 1}})
	if err != nil {
		t.Fatal(err)
	}
	_, done := simchip.Watch(t.Context(), in)
	simchip.CheckUnplugEndsWatch(t, sc, done, 10*probe)
	if _, err := in.Read(); !errors.Is(err, devices.ErrLineLost) {
		t.Errorf("Read after removal = %v, want ErrLineLost", err)
	}
	if err := out.Set(devices.High); !errors.Is(err, devices.ErrLineLost) {
		t.Errorf("Set after removal = %v, want ErrLineLost", err)
	}
	simchip.CheckCloseAfterRemoval(t, in, out, b)
}
