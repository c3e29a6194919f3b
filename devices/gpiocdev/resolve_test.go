package gpiocdev

import (
	"errors"
	"strings"
	"testing"

	"github.com/hallguard/hallguard/devices"
)

// fakeFinder holds chips and their line names.
type fakeFinder map[string][]string

func (f fakeFinder) Chips() []string {
	var cs []string
	for _, c := range []string{"gpiochip0", "gpiochip1", "gpiochip2"} {
		if _, ok := f[c]; ok {
			cs = append(cs, c)
		}
	}
	return cs
}

func (f fakeFinder) Lines(chip string) ([]string, error) {
	names, ok := f[chip]
	if !ok {
		return nil, errNoChip
	}
	return names, nil
}

func TestResolve(t *testing.T) {
	f := fakeFinder{
		"gpiochip0": {"", "PANIC1", "SMOKE", "DUP"},
		"gpiochip1": {"RELAY", "DUP"},
	}
	cases := []struct {
		name       string
		ref        devices.LineRef
		chip       string
		offset     int
		noSuchLine bool   // error wraps ErrNoSuchLine
		errHas     string // error must contain this; "" means no error
	}{
		{name: "offset on default chip", ref: devices.LineRef{Offset: 2}, chip: "gpiochip0", offset: 2},
		{name: "offset on given chip", ref: devices.LineRef{Chip: "gpiochip1", Offset: 0}, chip: "gpiochip1", offset: 0},
		{name: "offset with matching name", ref: devices.LineRef{Offset: 1, Name: "PANIC1"}, chip: "gpiochip0", offset: 1},
		{name: "offset with wrong name", ref: devices.LineRef{Offset: 2, Name: "PANIC1"}, noSuchLine: true, errHas: `named "SMOKE", not "PANIC1"`},
		{name: "offset out of range", ref: devices.LineRef{Offset: 4}, noSuchLine: true, errHas: "line 4 on gpiochip0"},
		{name: "offset on missing chip", ref: devices.LineRef{Chip: "gpiochip9", Offset: 0}, noSuchLine: true, errHas: "chip gpiochip9"},
		{name: "name on any chip", ref: devices.LineRef{Offset: -1, Name: "RELAY"}, chip: "gpiochip1", offset: 0},
		{name: "name on given chip", ref: devices.LineRef{Chip: "gpiochip0", Offset: -1, Name: "SMOKE"}, chip: "gpiochip0", offset: 2},
		{name: "name missing everywhere", ref: devices.LineRef{Offset: -1, Name: "NOPE"}, noSuchLine: true, errHas: `"NOPE" on any chip`},
		{name: "name missing on given chip", ref: devices.LineRef{Chip: "gpiochip1", Offset: -1, Name: "SMOKE"}, noSuchLine: true, errHas: `"SMOKE" on gpiochip1`},
		{name: "name on missing chip", ref: devices.LineRef{Chip: "gpiochip7", Offset: -1, Name: "SMOKE"}, noSuchLine: true, errHas: "chip gpiochip7"},
		{name: "ambiguous name", ref: devices.LineRef{Offset: -1, Name: "DUP"}, errHas: "gpiochip0:3, gpiochip1:1"},
		{name: "ambiguity resolved by chip", ref: devices.LineRef{Chip: "gpiochip1", Offset: -1, Name: "DUP"}, chip: "gpiochip1", offset: 1},
		{name: "neither offset nor name", ref: devices.LineRef{Offset: -1}, noSuchLine: true, errHas: "neither offset nor name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			chip, offset, err := resolve(c.ref, "gpiochip0", f)
			if c.errHas == "" {
				if err != nil {
					t.Fatalf("resolve(%+v): %v", c.ref, err)
				}
				if chip != c.chip || offset != c.offset {
					t.Errorf("resolve(%+v) = %s:%d, want %s:%d", c.ref, chip, offset, c.chip, c.offset)
				}
				return
			}
			if err == nil {
				t.Fatalf("resolve(%+v) = %s:%d, want error containing %q", c.ref, chip, offset, c.errHas)
			}
			if !strings.Contains(err.Error(), c.errHas) {
				t.Errorf("resolve(%+v) error %q does not contain %q", c.ref, err, c.errHas)
			}
			if got := errors.Is(err, devices.ErrNoSuchLine); got != c.noSuchLine {
				t.Errorf("resolve(%+v) error %q: errors.Is(ErrNoSuchLine) = %t, want %t", c.ref, err, got, c.noSuchLine)
			}
		})
	}
}
