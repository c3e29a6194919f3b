package periph

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/clock"
)

// maxEarly is how many WaitForEdge calls in a row may return false well
// before their timeout before the line is taken as lost.
const maxEarly = 3

// errWatching is returned by a second call to Watch.
var errWatching = errors.New("Watch already called")

// input implements devices.Input over a periph pin.
type input struct {
	id        string
	pin       gpio.PinIO
	activeLow bool
	clk       clock.Clock
	timeout   time.Duration
	// now measures how long WaitForEdge blocked. Its timeout is real time,
	// so this is the real clock, not clk.
	now     func() time.Time
	onClose func()
	initial devices.Level // level at open: the first baseline

	seq      uint64 // Watch goroutine only
	lost     atomic.Uint64
	watching atomic.Bool
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{} // closed when Watch returns
}

var (
	_ devices.Input = (*input)(nil)
	_ LostCounter   = (*input)(nil)
)

// ID returns the input's configured id.
func (in *input) ID() string { return in.id }

// KernelDebounce returns false: periph cannot debounce in the kernel.
func (in *input) KernelDebounce() bool { return false }

// LostEdges returns how many edges Watch saw without a level change.
func (in *input) LostEdges() uint64 { return in.lost.Load() }

// Read returns the pin's current logical level. periph reports no read
// errors: gpioioctl returns Low (and logs) when the read fails.
func (in *input) Read() (devices.Level, error) {
	return logical(in.pin.Read(), in.activeLow), nil
}

// Watch delivers events to fn, from the calling goroutine, until ctx is done
// or the input is closed (it returns nil, within WaitTimeout) or the line
// looks lost (it returns an error wrapping devices.ErrLineLost).
func (in *input) Watch(ctx context.Context, fn func(devices.Event)) error {
	if !in.watching.CompareAndSwap(false, true) {
		return fmt.Errorf("periph: %s: %w", in.id, errWatching)
	}
	defer close(in.done)
	last := in.initial
	credit := 0 // changes found by a timeout read whose edge is still to come
	early := 0
	deliver := func(l devices.Level, lost uint64) {
		in.seq++
		in.lost.Add(lost)
		last = l
		fn(devices.Event{Line: in.id, Level: l, Time: in.clk.Now(), Seq: in.seq, Lost: lost})
	}
	for {
		if in.stopped(ctx) {
			return nil
		}
		start := in.now()
		edge := in.pin.WaitForEdge(in.timeout)
		if in.stopped(ctx) {
			return nil
		}
		if edge {
			early = 0
			l, _ := in.Read()
			switch {
			case l != last:
				deliver(l, 0)
			case credit > 0:
				credit--
			default:
				// The level came back before we could read it: a
				// pulse was missed. Say so now, at the level we see.
				deliver(l, 1)
			}
			continue
		}
		if in.now().Sub(start) < in.timeout/2 {
			// No wait: the read failed. Do not trust Read now.
			if early++; early >= maxEarly {
				return fmt.Errorf("periph: %s: %w: WaitForEdge failed %d times in a row without waiting", in.id, devices.ErrLineLost, early)
			}
			continue
		}
		early = 0
		if l, _ := in.Read(); l != last {
			deliver(l, 0)
			credit = 1
		}
	}
}

func (in *input) stopped(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	select {
	case <-in.stop:
		return true
	default:
		return false
	}
}

// Close makes a running Watch return, waiting up to WaitTimeout for it (so
// it must not be called from Watch's fn), then releases the pin. Later calls
// return nil.
func (in *input) Close() error {
	first := false
	in.stopOnce.Do(func() {
		close(in.stop)
		first = true
	})
	if !first {
		return nil
	}
	if in.watching.Load() {
		<-in.done
	}
	err := release(in.pin)
	if in.onClose != nil {
		in.onClose()
	}
	if err != nil {
		return fmt.Errorf("periph: close %s: %w", in.id, err)
	}
	return nil
}
