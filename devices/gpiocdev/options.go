package gpiocdev

import (
	"time"

	"github.com/hallguard/hallguard/devices/clock"
)

// Defaults for Options fields left zero.
const (
	DefaultConsumer      = "hallguard"
	DefaultChip          = "gpiochip0"
	DefaultEventBuffer   = 1024
	DefaultProbeInterval = time.Second
)

// Options configures the backend. Zero fields take the defaults above.
type Options struct {
	// Consumer is the label the kernel shows as the lines' user.
	Consumer string
	// DefaultChip is used for lines given by offset without a chip.
	DefaultChip string
	// EventBuffer is the per-input event queue size (and the kernel buffer
	// size asked for) when InputSpec.EventBuffer is 0.
	EventBuffer int
	// ProbeInterval is how often Watch checks that the line is still there
	// and that its level matches the last event. Negative turns probing, and
	// with it line-loss detection, off.
	ProbeInterval time.Duration
	// SoftwareDebounce, if set, never asks the kernel to debounce:
	// KernelDebounce then reports false and conditioning debounces.
	SoftwareDebounce bool
	// Clock is the wall clock that event timestamps are converted to and
	// that schedules probes. Nil means clock.Real.
	Clock clock.Clock
	// Monotonic reads CLOCK_MONOTONIC, the clock of kernel event timestamps.
	// It returns a negative value if the clock cannot be read. Nil means the
	// system's; tests inject one.
	Monotonic func() time.Duration
}

func (o Options) withDefaults() Options {
	if o.Consumer == "" {
		o.Consumer = DefaultConsumer
	}
	if o.DefaultChip == "" {
		o.DefaultChip = DefaultChip
	}
	if o.EventBuffer <= 0 {
		o.EventBuffer = DefaultEventBuffer
	}
	if o.ProbeInterval == 0 {
		o.ProbeInterval = DefaultProbeInterval
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	return o
}

// LostCounter is implemented by inputs that count edges they know were lost.
type LostCounter interface {
	// LostEdges returns the number of edges lost since the input was opened.
	LostEdges() uint64
}
