//go:build linux

package gpiocdev

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warthog618/go-gpiocdev"

	"github.com/hallguard/hallguard/devices"
)

// optionSet summarises request options by their typed values.
type optionSet struct {
	consumer  string
	input     bool
	output    []int
	bias      gpiocdev.LineBias
	edges     gpiocdev.LineEdge
	clock     gpiocdev.LineEventClock
	buffer    int
	handler   bool
	activeLow bool
	debounce  time.Duration
}

func summarise(t *testing.T, opts []gpiocdev.LineReqOption) optionSet {
	t.Helper()
	var s optionSet
	for _, o := range opts {
		switch v := o.(type) {
		case gpiocdev.ConsumerOption:
			s.consumer = string(v)
		case gpiocdev.InputOption:
			s.input = true
		case gpiocdev.OutputOption:
			s.output = []int(v)
		case gpiocdev.LineBias:
			s.bias = v
		case gpiocdev.LineEdge:
			s.edges = v
		case gpiocdev.LineEventClock:
			s.clock = v
		case gpiocdev.EventBufferSizeOption:
			s.buffer = int(v)
		case gpiocdev.EventHandler:
			s.handler = v != nil
		case gpiocdev.LevelOption:
			s.activeLow = bool(v)
		case gpiocdev.DebounceOption:
			s.debounce = time.Duration(v)
		default:
			t.Fatalf("unexpected option %T", o)
		}
	}
	return s
}

func TestInputOptions(t *testing.T) {
	h := func(gpiocdev.LineEvent) {}
	cases := []struct {
		name     string
		spec     devices.InputSpec
		debounce bool
		want     optionSet
	}{
		{"pull-up active-low debounced",
			devices.InputSpec{Bias: devices.BiasPullUp, ActiveLow: true, Debounce: 30 * time.Millisecond}, true,
			optionSet{bias: gpiocdev.WithPullUp, activeLow: true, debounce: 30 * time.Millisecond}},
		{"pull-down", devices.InputSpec{Bias: devices.BiasPullDown}, false, optionSet{bias: gpiocdev.WithPullDown}},
		{"bias disabled", devices.InputSpec{Bias: devices.BiasDisabled}, false, optionSet{bias: gpiocdev.WithBiasDisabled}},
		{"bias as is", devices.InputSpec{}, false, optionSet{bias: gpiocdev.WithBiasAsIs}},
		{"debounce left to software", devices.InputSpec{Debounce: 30 * time.Millisecond}, false, optionSet{bias: gpiocdev.WithBiasAsIs}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts, err := inputOptions(c.spec, "hg", 64, c.debounce, h)
			if err != nil {
				t.Fatal(err)
			}
			got := summarise(t, opts)
			want := c.want
			want.consumer, want.input, want.edges, want.clock, want.buffer, want.handler =
				"hg", true, gpiocdev.WithBothEdges, gpiocdev.WithMonotonicEventClock, 64, true
			if got.consumer != want.consumer || got.input != want.input || got.bias != want.bias ||
				got.edges != want.edges || got.clock != want.clock || got.buffer != want.buffer ||
				got.handler != want.handler || got.activeLow != want.activeLow || got.debounce != want.debounce {
				t.Errorf("options %+v, want %+v", got, want)
			}
		})
	}
	if _, err := inputOptions(devices.InputSpec{Bias: "sideways"}, "hg", 1, false, h); err == nil || !strings.Contains(err.Error(), "sideways") {
		t.Errorf("unknown bias: err = %v, want one naming it", err)
	}
}

func TestOutputOptions(t *testing.T) {
	cases := []struct {
		name string
		spec devices.OutputSpec
		want optionSet
	}{
		{"fail-safe low", devices.OutputSpec{FailSafe: devices.Low}, optionSet{consumer: "hg", output: []int{0}}},
		{"fail-safe high active-low", devices.OutputSpec{FailSafe: devices.High, ActiveLow: true}, optionSet{consumer: "hg", output: []int{1}, activeLow: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := summarise(t, outputOptions(c.spec, "hg"))
			if got.consumer != c.want.consumer || len(got.output) != 1 || got.output[0] != c.want.output[0] || got.activeLow != c.want.activeLow {
				t.Errorf("options %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestDebounceRefused(t *testing.T) {
	if !debounceRefused(gpiocdev.ErrUapiIncompatibility{Feature: "debounce", AbiVersion: 1}) {
		t.Error("uAPI v1 incompatibility not recognised")
	}
	if debounceRefused(errors.New("busy")) {
		t.Error("unrelated error taken as a debounce refusal")
	}
}

// Missing chips and lines name the line and wrap ErrNoSuchLine, on any
// machine: these chips and names do not exist.
func TestOpenMissing(t *testing.T) {
	b, err := New(Options{DefaultChip: "gpiochip-hallguard-missing"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cases := []struct {
		name string
		open func() error
		has  string
	}{
		{"input by offset", func() error {
			_, err := b.OpenInput(devices.InputSpec{ID: "panic1", Line: devices.LineRef{Offset: 3}})
			return err
		}, "gpiochip-hallguard-missing"},
		{"input by name", func() error {
			_, err := b.OpenInput(devices.InputSpec{ID: "panic1", Line: devices.LineRef{Offset: -1, Name: "HALLGUARD-NO-SUCH-LINE"}})
			return err
		}, "HALLGUARD-NO-SUCH-LINE"},
		{"output by name on chip", func() error {
			_, err := b.OpenOutput(devices.OutputSpec{ID: "siren", Line: devices.LineRef{Chip: "gpiochip-hallguard-missing", Offset: -1, Name: "SIREN"}})
			return err
		}, "gpiochip-hallguard-missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.open()
			if !errors.Is(err, devices.ErrNoSuchLine) || !strings.Contains(err.Error(), c.has) {
				t.Errorf("err = %v, want ErrNoSuchLine naming %q", err, c.has)
			}
		})
	}
}

func TestOpenAfterClose(t *testing.T) {
	b, _ := New(Options{})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.OpenInput(devices.InputSpec{ID: "x", Line: devices.LineRef{Offset: 0}}); !errors.Is(err, errBackendClosed) {
		t.Errorf("OpenInput after Close = %v, want errBackendClosed", err)
	}
}

func TestDefaults(t *testing.T) {
	b, _ := New(Options{})
	o := b.(*backend).opts
	if o.Consumer != "hallguard" || o.DefaultChip != "gpiochip0" || o.EventBuffer != 1024 || o.ProbeInterval != time.Second || o.Clock == nil || o.Monotonic == nil {
		t.Errorf("defaults %+v", o)
	}
	if m := monotonicNow(); m <= 0 {
		t.Errorf("monotonicNow = %v", m)
	}
}
