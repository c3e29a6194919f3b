package periph

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/hallguard/hallguard/devices"
)

// backend implements devices.Backend over periph pins.
type backend struct {
	opts Options

	mu     sync.Mutex
	closed bool
	open   map[gpio.PinIO]line // keyed by the real pin
}

// line is an open input or output.
type line interface {
	ID() string
	Close() error
}

var _ devices.Backend = (*backend)(nil)

// errBackendClosed is returned when opening a line on a closed backend.
var errBackendClosed = errors.New("backend closed")

// maxOffsets bounds the scan of a chip's lines when a name is given with a
// chip.
const maxOffsets = 4096

// New initialises periph's host drivers (Options.Init, host.Init by default;
// periph does the work once per process) and returns the backend.
func New(opts Options) (devices.Backend, error) {
	o := opts.withDefaults()
	if err := o.Init(); err != nil {
		return nil, fmt.Errorf("periph: host init: %w", err)
	}
	return &backend{opts: o, open: map[gpio.PinIO]line{}}, nil
}

// lookup finds the pin for ref. Errors for missing lines wrap
// devices.ErrNoSuchLine and name the line.
func (b *backend) lookup(ref devices.LineRef) (gpio.PinIO, error) {
	var p gpio.PinIO
	switch {
	case ref.Offset >= 0:
		chip := chipOr(ref.Chip, b.opts.DefaultChip)
		if p = b.opts.ByOffset(chip, ref.Offset); p == nil {
			return nil, fmt.Errorf("line %d on %s: %w", ref.Offset, chip, devices.ErrNoSuchLine)
		}
		if ref.Name != "" && !nameIs(p.Name(), chip, ref.Name) {
			return nil, fmt.Errorf("line %d on %s is named %q, not %q: %w", ref.Offset, chip, p.Name(), ref.Name, devices.ErrNoSuchLine)
		}
	case ref.Name != "" && ref.Chip != "":
		// The registry is global and a duplicated name is registered under
		// another chip's line, so look on the chip itself.
		for o := 0; o < maxOffsets && p == nil; o++ {
			q := b.opts.ByOffset(ref.Chip, o)
			if q == nil {
				break
			}
			if nameIs(q.Name(), ref.Chip, ref.Name) {
				p = q
			}
		}
		if p == nil {
			return nil, fmt.Errorf("line %q on %s: %w", ref.Name, ref.Chip, devices.ErrNoSuchLine)
		}
	case ref.Name != "":
		if p = b.opts.ByName(ref.Name); p == nil {
			return nil, fmt.Errorf("line %q: %w", ref.Name, devices.ErrNoSuchLine)
		}
	default:
		return nil, fmt.Errorf("line has neither offset nor name: %w", devices.ErrNoSuchLine)
	}
	if r, ok := p.(gpio.RealPin); ok {
		p = r.Real()
	}
	return p, nil
}

// nameIs reports whether a registered pin name is name on chip: gpioioctl
// registers a duplicated name as "<chip>-<name>".
func nameIs(pinName, chip, name string) bool {
	return pinName == name || pinName == chip+"-"+name
}

func chipOr(chip, def string) string {
	if chip == "" {
		return def
	}
	return chip
}

// claim records p as open for l; it fails if p is already open.
func (b *backend) claim(p gpio.PinIO, l line) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errBackendClosed
	}
	if other, ok := b.open[p]; ok {
		return fmt.Errorf("pin %s already open as %s", p.Name(), other.ID())
	}
	b.open[p] = l
	return nil
}

func (b *backend) unclaim(p gpio.PinIO) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.open, p)
}

// OpenInput configures the pin as an input with both-edge detection and the
// spec's pull. Debounce is left to conditioning.
func (b *backend) OpenInput(spec devices.InputSpec) (devices.Input, error) {
	p, err := b.lookup(spec.Line)
	if err != nil {
		return nil, fmt.Errorf("periph: input %s: %w", spec.ID, err)
	}
	pull, err := pullFor(spec.Bias)
	if err != nil {
		return nil, fmt.Errorf("periph: input %s: %w", spec.ID, err)
	}
	in := &input{
		id:        spec.ID,
		pin:       p,
		activeLow: spec.ActiveLow,
		clk:       b.opts.Clock,
		timeout:   b.opts.WaitTimeout,
		now:       time.Now,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		onClose:   func() { b.unclaim(p) },
	}
	if err := b.claim(p, in); err != nil {
		return nil, fmt.Errorf("periph: input %s: %w", spec.ID, err)
	}
	if err := p.In(pull, gpio.BothEdges); err != nil {
		b.unclaim(p)
		return nil, fmt.Errorf("periph: input %s: configure %s: %w", spec.ID, p.Name(), err)
	}
	in.initial, _ = in.Read()
	return in, nil
}

// OpenOutput configures the pin as an output at spec.FailSafe.
func (b *backend) OpenOutput(spec devices.OutputSpec) (devices.Output, error) {
	p, err := b.lookup(spec.Line)
	if err != nil {
		return nil, fmt.Errorf("periph: output %s: %w", spec.ID, err)
	}
	o := devices.NewLineOutput("periph", spec.ID, &output{id: spec.ID, pin: p, activeLow: spec.ActiveLow}, spec.FailSafe,
		func() { b.unclaim(p) })
	if err := b.claim(p, o); err != nil {
		return nil, fmt.Errorf("periph: output %s: %w", spec.ID, err)
	}
	if err := p.Out(physical(spec.FailSafe, spec.ActiveLow)); err != nil {
		b.unclaim(p)
		return nil, fmt.Errorf("periph: output %s: drive %s: %w", spec.ID, p.Name(), err)
	}
	return o, nil
}

// Close drives every open output to its fail-safe level, then releases every
// line. Lines cannot be opened afterwards.
func (b *backend) Close() error {
	b.mu.Lock()
	b.closed = true
	open := slices.Collect(maps.Values(b.open))
	b.mu.Unlock()
	return devices.CloseLines(open)
}

func pullFor(b devices.Bias) (gpio.Pull, error) {
	switch b {
	case devices.BiasAsIs:
		return gpio.PullNoChange, nil
	case devices.BiasDisabled:
		// gpioioctl maps Float to no bias flag, i.e. as is.
		return gpio.Float, nil
	case devices.BiasPullUp:
		return gpio.PullUp, nil
	case devices.BiasPullDown:
		return gpio.PullDown, nil
	}
	return gpio.PullNoChange, fmt.Errorf("unknown bias %q", b)
}

// physical maps a logical level to the pin level.
func physical(l devices.Level, activeLow bool) gpio.Level {
	return gpio.Level(bool(l) != activeLow)
}

// logical maps a pin level to the logical level.
func logical(l gpio.Level, activeLow bool) devices.Level {
	return devices.Level(bool(l) != activeLow)
}

// release hands the pin back to the system where the driver can (gpioioctl
// closes the line request).
func release(p gpio.PinIO) error {
	switch c := p.(type) {
	case interface{ Close() error }:
		return c.Close()
	case interface{ Close() }:
		c.Close()
	}
	return nil
}
