package periph

import (
	"path/filepath"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
	"periph.io/x/host/v3/gpioioctl"

	"github.com/hallguard/hallguard/devices/clock"
)

// Defaults for Options fields left zero.
const (
	DefaultChip        = "gpiochip0"
	DefaultWaitTimeout = 200 * time.Millisecond
)

// Options configures the backend. Zero fields take the defaults.
type Options struct {
	// Init initialises periph's host drivers; nil calls host.Init.
	Init func() error
	// ByName finds a pin by name; nil means gpioreg.ByName.
	ByName func(name string) gpio.PinIO
	// ByOffset finds the pin at offset on a chip ("gpiochip0" or its
	// /dev path), or returns nil; nil means the chips gpioioctl found.
	ByOffset func(chip string, offset int) gpio.PinIO
	// DefaultChip is used for lines given by offset without a chip.
	DefaultChip string
	// Clock stamps events. Nil means clock.Real.
	Clock clock.Clock
	// WaitTimeout bounds each WaitForEdge: how long Close and a cancelled
	// Watch may take to return, and how often an idle line's level is read.
	WaitTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Init == nil {
		o.Init = func() error {
			_, err := host.Init()
			return err
		}
	}
	if o.ByName == nil {
		o.ByName = gpioreg.ByName
	}
	if o.ByOffset == nil {
		o.ByOffset = ioctlByOffset
	}
	if o.DefaultChip == "" {
		o.DefaultChip = DefaultChip
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = DefaultWaitTimeout
	}
	return o
}

// ioctlByOffset finds a line on the chips gpioioctl found at host.Init.
func ioctlByOffset(chip string, offset int) gpio.PinIO {
	for _, c := range gpioioctl.Chips {
		if c.Name() != chip && c.Path() != chip && filepath.Base(c.Path()) != chip {
			continue
		}
		if offset < 0 || offset >= c.LineCount() {
			return nil
		}
		if l := c.ByNumber(offset); l != nil {
			return l
		}
		return nil
	}
	return nil
}

// LostCounter is implemented by inputs that count edges they know were lost.
type LostCounter interface {
	// LostEdges returns the number of edges lost since the input was opened.
	LostEdges() uint64
}
