// Package devices defines how hallguard talks to hardware lines, and
// conditions their raw edges into clean signals.
//
// Backends (gpiocdev, periph, sim) live in sub-packages and implement the
// interfaces here; this package never imports them. Conditioning (debounce,
// NO/NC contacts, stuck inputs, open loops, lost edges) is the same for every
// backend and lives in condition.go; so does driving an output and its
// fail-safe level (output.go), over a backend's Driver. Nothing here knows
// about playbooks, incidents or MQTT.
package devices

import (
	"context"
	"errors"
	"time"
)

// Level is a line's logical level: after the line's active-low setting has
// been applied, but before the contact type (NO/NC) is.
type Level bool

const (
	// Low is the inactive logical level (physically low on an active-high line).
	Low Level = false
	// High is the active logical level (physically low on an active-low line).
	High Level = true
)

func (l Level) String() string {
	if l {
		return "high"
	}
	return "low"
}

// Event is one edge seen on an input line.
type Event struct {
	// Line is the input's configured id.
	Line string
	// Level is the logical level after the edge.
	Level Level
	// Time is when the edge happened: the kernel's timestamp converted to wall
	// time where the backend has one, else the time the backend saw it.
	Time time.Time
	// Seq is the line's own event sequence number (gpiocdev LineSeqno), or a
	// backend counter where the hardware has none. It starts at 1.
	Seq uint64
	// Lost is how many edges the backend knows were lost just before this one
	// (a gap in Seq: the kernel's event buffer overflowed).
	Lost uint64
}

// Bias is the line's pull resistor setting.
type Bias string

// Biases understood by every backend. BiasAsIs leaves the line alone.
const (
	BiasAsIs     Bias = ""
	BiasDisabled Bias = "disabled"
	BiasPullUp   Bias = "pull-up"
	BiasPullDown Bias = "pull-down"
)

// LineRef names a line: on a chip, by offset or by name. A backend that
// only knows names (periph) uses Name; Offset is then -1.
type LineRef struct {
	Chip   string // e.g. "gpiochip0"; empty means the backend's default
	Offset int    // -1 when the line is given by name
	Name   string // line name, e.g. "GPIO17"; empty when given by offset
}

// InputSpec is everything a backend needs to open an input line.
type InputSpec struct {
	ID        string
	Line      LineRef
	ActiveLow bool
	Bias      Bias
	// Debounce is the debounce period. A backend that can debounce in the
	// kernel (gpiocdev) does so and reports it through Input.KernelDebounce;
	// otherwise conditioning debounces in software.
	Debounce time.Duration
	// EventBuffer is the kernel event buffer size to ask for (0: default).
	EventBuffer int
	// Idle is the logical level the line has at rest (Low for an NO
	// contact, High for NC). Only the sim backend uses it, to start its
	// lines at rest and to know what a press looks like.
	Idle Level
}

// OutputSpec is everything a backend needs to open an output line.
type OutputSpec struct {
	ID        string
	Line      LineRef
	ActiveLow bool
	// FailSafe is the level the line is driven to on open and on close.
	FailSafe Level
}

// Input is an opened input line.
type Input interface {
	// ID returns the input's configured id.
	ID() string
	// Read returns the line's current logical level.
	Read() (Level, error)
	// Watch calls fn for every edge, in order, from a single goroutine, until
	// ctx is done (it then returns nil) or the line fails (it then returns an
	// error wrapping ErrLineLost). fn must not block: it hands the event off.
	// Watch may be called once per Input.
	Watch(ctx context.Context, fn func(Event)) error
	// KernelDebounce reports whether the backend applied InputSpec.Debounce
	// itself, so that conditioning must not debounce again.
	KernelDebounce() bool
	// Close releases the line. It is safe to call more than once.
	Close() error
}

// Output is an opened output line.
type Output interface {
	// ID returns the output's configured id.
	ID() string
	// Set drives the line to the logical level l.
	Set(l Level) error
	// Close drives the line to its fail-safe level and releases it.
	Close() error
}

// Backend opens lines on one kind of hardware.
type Backend interface {
	// OpenInput requests the line for input with both-edge events.
	OpenInput(spec InputSpec) (Input, error)
	// OpenOutput requests the line for output, driven at spec.FailSafe.
	OpenOutput(spec OutputSpec) (Output, error)
	// Close releases everything the backend holds.
	Close() error
}

// Sentinel errors callers branch on.
var (
	// ErrLineLost means a line (or its whole chip) went away while in use.
	ErrLineLost = errors.New("devices: line lost")
	// ErrNotSupported means the backend cannot do this on this platform.
	ErrNotSupported = errors.New("devices: not supported on this platform")
	// ErrNoSuchLine means the named chip or line does not exist.
	ErrNoSuchLine = errors.New("devices: no such line")
)
