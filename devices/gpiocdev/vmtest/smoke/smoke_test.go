//go:build linux && vmtest

package smoke

import (
	"errors"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/hallguard/hallguard/devices/simchip"
	"github.com/warthog618/go-gpiocdev"
)

// The chip has the 16 named lines the init promised, findable by name.
func TestChipLayout(t *testing.T) {
	c := simchip.InVM(t)
	if len(c.Lines) != 16 {
		t.Fatalf("HALLGUARD_SIM_LINE_NAMES has %d names, want 16", len(c.Lines))
	}
	chip, err := gpiocdev.NewChip(c.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer chip.Close()
	if chip.Label != c.Label || chip.Lines() != len(c.Lines) {
		t.Errorf("chip %s: label %q lines %d, want %q %d", c.Name, chip.Label, chip.Lines(), c.Label, len(c.Lines))
	}
	for off, want := range c.Lines {
		info, err := chip.LineInfo(off)
		if err != nil {
			t.Fatal(err)
		}
		if info.Name != want {
			t.Errorf("offset %d: name %q, want %q", off, info.Name, want)
		}
	}
	name, off, err := gpiocdev.FindLine("smoke1")
	if err != nil || name != c.Name || off != c.Offset("smoke1") || off != 3 {
		t.Errorf("FindLine(smoke1) = %s, %d, %v; want %s, 3", name, off, err, c.Name)
	}
}

// Pull-up then pull-down through sysfs gives a rising then a falling edge.
func TestInputEdges(t *testing.T) {
	c := simchip.InVM(t)
	off := c.Offset("panic0")
	events := make(chan gpiocdev.LineEvent, 16)
	l, err := gpiocdev.RequestLine(c.Name, off, gpiocdev.AsInput, gpiocdev.WithBothEdges,
		gpiocdev.WithConsumer("vmtest-smoke"),
		gpiocdev.WithEventHandler(func(e gpiocdev.LineEvent) { events <- e }))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	var lat []time.Duration
	for i := 0; i < 10; i++ {
		for _, up := range []bool{true, false} {
			start := time.Now()
			if err := c.SetPull(off, up); err != nil {
				t.Fatal(err)
			}
			want := gpiocdev.LineEventFallingEdge
			if up {
				want = gpiocdev.LineEventRisingEdge
			}
			select {
			case e := <-events:
				lat = append(lat, time.Since(start))
				if e.Type != want || e.Offset != off {
					t.Fatalf("event %+v, want type %v on %d", e, want, off)
				}
			case <-time.After(2 * time.Second):
				t.Fatalf("no edge %v within 2s after pull up=%v", want, up)
			}
			v, err := l.Value()
			if err != nil {
				t.Fatal(err)
			}
			if (v == 1) != up {
				t.Fatalf("Value() = %d after pull up=%v", v, up)
			}
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("%d edges, sysfs write -> handler latency min %v median %v max %v",
		len(lat), lat[0], lat[len(lat)/2], lat[len(lat)-1])
}

// An output driven through the cdev shows up in sim_gpioN/value.
func TestOutputValue(t *testing.T) {
	c := simchip.InVM(t)
	off := c.Offset("siren")
	l, err := gpiocdev.RequestLine(c.Name, off, gpiocdev.AsOutput(0), gpiocdev.WithConsumer("vmtest-smoke"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, v := range []int{1, 0, 1} {
		if err := l.SetValue(v); err != nil {
			t.Fatal(err)
		}
		got, err := c.Value(off)
		if err != nil {
			t.Fatal(err)
		}
		if got != v {
			t.Fatalf("sim value %d after SetValue(%d)", got, v)
		}
	}
}

// Unplugging the chip under an open request: the request starts failing with
// ENODEV. Keep this test LAST in the file: it removes the chip (the init
// makes a fresh one for the next test binary).
func TestZZChipRemoval(t *testing.T) {
	c := simchip.InVM(t)
	off := c.Offset("door")
	l, err := gpiocdev.RequestLine(c.Name, off, gpiocdev.AsInput, gpiocdev.WithBothEdges,
		gpiocdev.WithEventHandler(func(gpiocdev.LineEvent) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Value(); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(); err != nil {
		t.Fatalf("remove chip: %v", err)
	}
	_, err = l.Value()
	if !errors.Is(err, syscall.ENODEV) {
		t.Fatalf("Value() after removal: err = %v, want ENODEV", err)
	}
	if _, err := gpiocdev.NewChip(c.Name); err == nil {
		t.Fatalf("%s still opens after removal", c.Name)
	}
	t.Logf("after removal: Value() -> %v", err)
}
