// Package sim is the simulated hall: input and output lines that exist only
// in memory. Tests drive them directly (Press, Release, Pulse, Set, Bounce);
// at run time `hallguard sim press INPUT` drives them through the control
// socket in control.go. It implements devices.Backend like the hardware
// backends, so everything above it runs unchanged.
package sim

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/clock"
)

// Backend is a simulated set of lines. Its zero value is not usable; call New.
type Backend struct {
	clk     clock.Clock
	mu      sync.Mutex
	inputs  map[string]*Input
	outputs map[string]*Output
}

var _ devices.Backend = (*Backend)(nil)

// New returns an empty simulated hall using clk for event times.
func New(clk clock.Clock) *Backend {
	if clk == nil {
		clk = clock.Real{}
	}
	return &Backend{clk: clk, inputs: map[string]*Input{}, outputs: map[string]*Output{}}
}

// OpenInput creates a simulated input at its idle level.
func (b *Backend) OpenInput(spec devices.InputSpec) (devices.Input, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if in, ok := b.inputs[spec.ID]; ok {
		// A closed input may be opened again, as a line is after its chip
		// came back; it keeps its level. An open one may not.
		in.mu.Lock()
		defer in.mu.Unlock()
		if !in.closed {
			return nil, fmt.Errorf("sim: input %q opened twice", spec.ID)
		}
		in.closed = false
		in.queued = nil // what a closed line did is read at open, not queued
		return in, nil
	}
	in := &Input{b: b, spec: spec, level: spec.Idle}
	b.inputs[spec.ID] = in
	return in, nil
}

// OpenOutput creates a simulated output at its fail-safe level.
func (b *Backend) OpenOutput(spec devices.OutputSpec) (devices.Output, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, dup := b.outputs[spec.ID]; dup {
		return nil, fmt.Errorf("sim: output %q opened twice", spec.ID)
	}
	o := &Output{spec: spec, level: spec.FailSafe}
	o.history = append(o.history, spec.FailSafe)
	b.outputs[spec.ID] = o
	return o, nil
}

// Close closes every line.
func (b *Backend) Close() error {
	b.mu.Lock()
	ins, outs := b.inputs, b.outputs
	b.mu.Unlock()
	for _, in := range ins {
		in.Close()
	}
	for _, o := range outs {
		o.Close()
	}
	return nil
}

// Input returns the simulated input with the given id, or nil.
func (b *Backend) Input(id string) *Input {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inputs[id]
}

// Output returns the simulated output with the given id, or nil.
func (b *Backend) Output(id string) *Output {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.outputs[id]
}

// InputIDs lists the open inputs, sorted.
func (b *Backend) InputIDs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return sortedIDs(b.inputs)
}

// OutputIDs lists the open outputs, sorted.
func (b *Backend) OutputIDs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return sortedIDs(b.outputs)
}

// sortedIDs lists the ids of lines, sorted (empty, not nil, for none).
func sortedIDs[L any](lines map[string]L) []string {
	ids := make([]string, 0, len(lines))
	for id := range lines {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Input is a simulated input line. Events are delivered to the watcher in
// the goroutine that changes the level, so tests stay deterministic.
type Input struct {
	b    *Backend
	spec devices.InputSpec

	mu     sync.Mutex
	level  devices.Level
	seq    uint64
	fn     func(devices.Event)
	closed bool
	lost   chan error
	// queued holds the edges made while the line is open and not yet
	// watched, delivered when Watch starts: the kernel queues a requested
	// line's events the same way, so none is lost between Open and Watch.
	queued []devices.Event
}

// maxQueued bounds queued, like a kernel line's event buffer; older edges
// are dropped, counted in the Lost of the oldest kept, and the newest kept.
const maxQueued = 64

var _ devices.Input = (*Input)(nil)

// ID returns the input's id.
func (in *Input) ID() string { return in.spec.ID }

// KernelDebounce is false: the sim has no kernel, conditioning debounces.
func (in *Input) KernelDebounce() bool { return false }

// Read returns the current level.
func (in *Input) Read() (devices.Level, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.level, nil
}

// Watch registers fn and blocks until ctx is done, the input is closed, or
// Lose is called (it then returns an error wrapping devices.ErrLineLost).
func (in *Input) Watch(ctx context.Context, fn func(devices.Event)) error {
	in.mu.Lock()
	if in.fn != nil {
		in.mu.Unlock()
		return fmt.Errorf("sim: %s: Watch called twice", in.spec.ID)
	}
	in.fn = fn
	in.lost = make(chan error, 1)
	lost := in.lost
	for _, ev := range in.queued {
		fn(ev)
	}
	in.queued = nil
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		in.fn = nil
		in.mu.Unlock()
	}()
	select {
	case <-ctx.Done():
		return nil
	case err := <-lost:
		return err
	}
}

// Set drives the line to logical level l. A change of level is an edge and
// is delivered to the watcher; setting the same level again is not. A
// closed input (its chip lost) still changes level, as a wire does with
// nobody watching: it is what Read finds when the line is opened again.
func (in *Input) Set(l devices.Level) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if l == in.level {
		return
	}
	in.level = l
	in.seq++
	if in.closed {
		return
	}
	ev := devices.Event{Line: in.spec.ID, Level: l, Time: in.b.clk.Now(), Seq: in.seq}
	if in.fn == nil {
		if len(in.queued) == maxQueued {
			// The oldest is dropped and the next says so (Event.Lost), as
			// a kernel line's sequence gap does.
			in.queued[1].Lost += in.queued[0].Lost + 1
			in.queued = in.queued[1:]
		}
		in.queued = append(in.queued, ev)
		return
	}
	in.fn(ev)
}

// Press puts the input in its active state (the opposite of idle).
func (in *Input) Press() { in.Set(!in.spec.Idle) }

// Release returns the input to idle.
func (in *Input) Release() { in.Set(in.spec.Idle) }

// Pulse presses, waits width on the real clock, and releases. With a fake
// clock, call Press and Release around an Advance instead.
func (in *Input) Pulse(width time.Duration) {
	in.Press()
	time.Sleep(width)
	in.Release()
}

// Lose makes Watch fail as if the chip had gone away.
func (in *Input) Lose() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.lost != nil {
		select {
		case in.lost <- fmt.Errorf("sim: %s: %w", in.spec.ID, devices.ErrLineLost):
		default:
		}
	}
}

// Close stops delivering events.
func (in *Input) Close() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.closed = true
	return nil
}

// Output is a simulated output line that remembers its levels.
type Output struct {
	spec    devices.OutputSpec
	mu      sync.Mutex
	level   devices.Level
	history []devices.Level
	closed  bool
}

var _ devices.Output = (*Output)(nil)

// ID returns the output's id.
func (o *Output) ID() string { return o.spec.ID }

// Set drives the output.
func (o *Output) Set(l devices.Level) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return fmt.Errorf("sim: output %s is closed", o.spec.ID)
	}
	if l != o.level {
		o.level = l
		o.history = append(o.history, l)
	}
	return nil
}

// Level returns the output's current level.
func (o *Output) Level() devices.Level {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.level
}

// History returns every level the output has had, oldest first.
func (o *Output) History() []devices.Level {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]devices.Level(nil), o.history...)
}

// Close returns the output to its fail-safe level.
func (o *Output) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	if o.level != o.spec.FailSafe {
		o.level = o.spec.FailSafe
		o.history = append(o.history, o.level)
	}
	o.closed = true
	return nil
}
