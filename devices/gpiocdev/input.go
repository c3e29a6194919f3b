package gpiocdev

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/clock"
)

// rawEvent is what the input keeps of a gpiocdev.LineEvent. It holds no
// library types so that this file builds on every OS.
type rawEvent struct {
	ts     time.Duration // kernel timestamp (CLOCK_MONOTONIC)
	rising bool          // inactive to active, active-low already applied
	seqno  uint32        // LineSeqno; 0 on uAPI v1
}

// request is a requested line as the input and output use it.
type request interface {
	// Value returns the logical level, 0 or 1.
	Value() (int, error)
	// Close releases the line.
	Close() error
}

// input implements devices.Input over a request that feeds push.
type input struct {
	id             string
	kernelDebounce bool
	req            request
	// probe checks the line is still there and returns its logical level.
	// Nil turns probing off.
	probe      func() (int, error)
	probeEvery time.Duration
	clk        clock.Clock
	mono       func() time.Duration
	onClose    func()

	events  chan rawEvent
	dropped atomic.Uint64 // queue drops not yet folded into an Event (uAPI v1)
	lost    atomic.Uint64 // running total for LostEdges

	initial  devices.Level // level read at open: the baseline for the level check
	watching atomic.Bool
	closed   chan struct{}
	closeMu  sync.Once

	mu       sync.Mutex
	released bool
	gone     error // set when the line was found lost
}

var (
	_ devices.Input = (*input)(nil)
	_ LostCounter   = (*input)(nil)
)

// errWatching is returned by a second call to Watch.
var errWatching = errors.New("Watch already called")

func newInput(id string, queue int, clk clock.Clock, mono func() time.Duration) *input {
	if queue < 1 {
		queue = 1
	}
	return &input{
		id:     id,
		clk:    clk,
		mono:   mono,
		events: make(chan rawEvent, queue),
		closed: make(chan struct{}),
	}
}

// push is the library's event handler. It never blocks: when the queue is
// full it drops the oldest event, so that the newest, which carries the
// current level, is kept. The handler is only ever called from one goroutine,
// so after one receive the send succeeds.
func (in *input) push(ev rawEvent) {
	for {
		select {
		case in.events <- ev:
			return
		default:
		}
		select {
		case <-in.events:
			in.dropped.Add(1)
		default:
		}
	}
}

// ID returns the input's configured id.
func (in *input) ID() string { return in.id }

// KernelDebounce reports whether the kernel debounces this line.
func (in *input) KernelDebounce() bool { return in.kernelDebounce }

// LostEdges returns the edges known lost so far: gaps in the kernel's
// sequence numbers and events the queue dropped, as delivered by Watch.
func (in *input) LostEdges() uint64 { return in.lost.Load() }

// Read returns the line's current logical level.
func (in *input) Read() (devices.Level, error) {
	if err := in.goneErr(); err != nil {
		return devices.Low, err
	}
	v, err := in.req.Value()
	if err != nil {
		return devices.Low, in.wrap("read", err)
	}
	return v != 0, nil
}

// Watch delivers events to fn until ctx is done or the input is closed (it
// returns nil) or the line is lost (it returns an error wrapping
// devices.ErrLineLost). Events queued before the loss are delivered first.
func (in *input) Watch(ctx context.Context, fn func(devices.Event)) error {
	if !in.watching.CompareAndSwap(false, true) {
		return fmt.Errorf("gpiocdev: %s: %w", in.id, errWatching)
	}
	if err := in.goneErr(); err != nil {
		return err
	}
	var (
		seq      seqTracker
		last     = in.initial
		mismatch int // probes in a row whose level differed from last
		probeC   chan struct{}
		timer    clock.Timer
	)
	arm := func() {}
	if in.probe != nil && in.probeEvery > 0 {
		probeC = make(chan struct{}, 1)
		arm = func() {
			timer = in.clk.AfterFunc(in.probeEvery, func() {
				select {
				case probeC <- struct{}{}:
				default:
				}
			})
		}
		arm()
		defer func() { timer.Stop() }()
	}
	deliver := func(raw rawEvent) {
		ev := in.convert(&seq, raw)
		last, mismatch = ev.Level, 0
		fn(ev)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-in.closed:
			return nil
		case raw := <-in.events:
			deliver(raw)
		case <-probeC:
			v, err := in.probe()
			if err != nil {
				if in.isClosed() {
					return nil
				}
				for len(in.events) > 0 {
					deliver(<-in.events)
				}
				return in.lose(err)
			}
			if l := devices.Level(v != 0); l != last && len(in.events) == 0 {
				mismatch++
				if mismatch >= 2 {
					// Two probes saw a level no event reported: an
					// interrupt was lost. Report the level we can see.
					in.lost.Add(1)
					last, mismatch = l, 0
					fn(devices.Event{Line: in.id, Level: l, Time: in.clk.Now(), Seq: seq.seq, Lost: 1})
				}
			} else {
				mismatch = 0
			}
			arm()
		}
	}
}

// convert turns a queued event into a devices.Event and accounts lost edges.
func (in *input) convert(t *seqTracker, raw rawEvent) devices.Event {
	seq, lost := t.next(raw.seqno)
	if d := in.dropped.Swap(0); !t.seen {
		// No sequence numbers (uAPI v1): only queue drops can be counted.
		// With them, the gap already includes the drops.
		lost += d
	}
	in.lost.Add(lost)
	mono := in.mono()
	return devices.Event{
		Line:  in.id,
		Level: devices.Level(raw.rising),
		Time:  eventTime(raw.ts, mono, in.clk.Now()),
		Seq:   seq,
		Lost:  lost,
	}
}

// lose records that the line is gone, releases it and returns Watch's error.
func (in *input) lose(cause error) error {
	err := fmt.Errorf("gpiocdev: %s: %w: %w", in.id, devices.ErrLineLost, cause)
	in.mu.Lock()
	if in.gone == nil {
		in.gone = err
	}
	in.mu.Unlock()
	// Closing the request also stops go-gpiocdev's watcher goroutine, which
	// otherwise spins on the dead fd.
	_ = in.release()
	return err
}

func (in *input) goneErr() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.gone
}

func (in *input) isClosed() bool {
	select {
	case <-in.closed:
		return true
	default:
		return false
	}
}

// Close makes a running Watch return nil and releases the line. Only the
// call that releases the line returns its error; later calls return nil.
func (in *input) Close() error {
	in.closeMu.Do(func() { close(in.closed) })
	return in.release()
}

func (in *input) release() error {
	in.mu.Lock()
	if in.released {
		in.mu.Unlock()
		return nil
	}
	in.released = true
	in.mu.Unlock()
	err := in.req.Close()
	if in.onClose != nil {
		in.onClose()
	}
	if err != nil {
		return fmt.Errorf("gpiocdev: close %s: %w", in.id, err)
	}
	return nil
}

func (in *input) wrap(op string, err error) error {
	return wrapErr(op, in.id, err)
}

// wrapErr prefixes err and marks a vanished device as devices.ErrLineLost.
func wrapErr(op, id string, err error) error {
	if isGone(err) {
		return fmt.Errorf("gpiocdev: %s %s: %w: %w", op, id, devices.ErrLineLost, err)
	}
	return fmt.Errorf("gpiocdev: %s %s: %w", op, id, err)
}

// isGone reports whether err means the chip or line no longer exists.
func isGone(err error) bool {
	return errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.ENXIO)
}

// seqTracker turns the kernel's 32-bit LineSeqno into Event.Seq and counts
// the gaps in it.
type seqTracker struct {
	seen bool   // a nonzero LineSeqno has been seen (uAPI v2)
	last uint32 // last LineSeqno
	seq  uint64 // last Event.Seq
}

// next returns Seq and Lost for an event with LineSeqno n. Seq follows n
// (widened past 32-bit wrap-around); Lost is the number of sequence numbers
// skipped since the last event. Without sequence numbers (n is 0 before any
// nonzero one) Seq counts events. A repeated or backward n is not a gap.
func (t *seqTracker) next(n uint32) (seq, lost uint64) {
	if n == 0 && !t.seen {
		t.seq++
		return t.seq, 0
	}
	t.seen = true
	d := n - t.last
	t.last = n
	if d == 0 || d > 1<<31 {
		t.seq++
		return t.seq, 0
	}
	t.seq += uint64(d)
	return t.seq, uint64(d - 1)
}

// realtimeAhead is how far beyond CLOCK_MONOTONIC a stamp must be to be taken
// as CLOCK_REALTIME. A monotonic stamp is never ahead of a later reading.
const realtimeAhead = 24 * time.Hour

// eventTime converts the kernel timestamp ts to wall time, given readings of
// CLOCK_MONOTONIC (monoNow, negative if unknown) and the wall clock taken
// together, after the event. A stamp more than a day ahead of monoNow is a
// CLOCK_REALTIME stamp (kernels before 5.7) and is used as is.
func eventTime(ts, monoNow time.Duration, wallNow time.Time) time.Time {
	if ts > monoNow+realtimeAhead && monoNow >= 0 {
		return time.Unix(0, int64(ts))
	}
	if monoNow < 0 {
		return wallNow
	}
	return wallNow.Add(ts - monoNow)
}
