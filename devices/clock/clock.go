// Package clock is the time source behind every timer in hallguard.
//
// Nothing in devices, conditioning or the engine calls time.Now or
// time.AfterFunc directly: they take a Clock, so tests drive time with Fake.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock tells the time and schedules callbacks, timers and tickers. The
// shape follows tailscale's tstime.Clock: channels where the standard
// library has channels, so code reads as it would with package time.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed.
	// The returned Timer's Stop prevents a call that has not yet started.
	AfterFunc(d time.Duration, f func()) Timer
	// NewTimer sends the time on the channel once d has passed, like
	// time.NewTimer. The channel has a buffer of one.
	NewTimer(d time.Duration) (Timer, <-chan time.Time)
	// NewTicker sends the time on the channel every d, like
	// time.NewTicker: a tick the reader has not taken yet is not queued
	// twice. d must be positive.
	NewTicker(d time.Duration) (Ticker, <-chan time.Time)
}

// Timer is a scheduled callback.
type Timer interface {
	// Stop cancels the call. It reports whether the call was prevented.
	Stop() bool
}

// Ticker is a running ticker.
type Ticker interface {
	// Stop ends the ticks. No tick is sent after Stop returns.
	Stop()
}

// Sleep waits for d on c, or until ctx is done. It returns ctx.Err() when
// the context ended first, else nil.
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	t, ch := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Every starts a ticker of d on c and returns the loop that serves it: the
// loop calls fn with each tick's time until ctx is done (never after),
// then stops the ticker. The ticker runs from the call to Every, not from when the loop
// starts, so a caller may run the loop in a goroutine of its own without
// losing a tick to the goroutine's start. A tick that comes while fn still
// runs is dropped, as with time.Ticker. d must be positive.
func Every(c Clock, d time.Duration, fn func(now time.Time)) (loop func(ctx context.Context)) {
	t, ticks := c.NewTicker(d)
	return func(ctx context.Context) {
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-ticks:
				if ctx.Err() != nil {
					return // both were ready: the end wins
				}
				fn(now)
			}
		}
	}
}

// Real is the system clock.
type Real struct{}

var _ Clock = Real{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// NewTimer wraps time.NewTimer.
func (Real) NewTimer(d time.Duration) (Timer, <-chan time.Time) {
	t := time.NewTimer(d)
	return t, t.C
}

// NewTicker wraps time.NewTicker.
func (Real) NewTicker(d time.Duration) (Ticker, <-chan time.Time) {
	t := time.NewTicker(d)
	return t, t.C
}

// Fake is a manual clock for tests. Time moves only when Advance or Set is
// called; due callbacks then run synchronously, in time order, in the caller's
// goroutine. The zero value starts at the zero time; use NewFake for a
// realistic start.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	seq    uint64
}

var _ Clock = (*Fake)(nil)

// NewFake returns a Fake clock set to t.
func NewFake(t time.Time) *Fake { return &Fake{now: t} }

type fakeTimer struct {
	c    *Fake
	at   time.Time
	seq  uint64
	f    func()
	done bool
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.done {
		return false
	}
	t.done = true
	return true
}

// Now returns the fake time.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f at Now()+d. A d <= 0 runs on the next Advance.
func (c *Fake) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, at: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

// NewTimer sends the fake time on the channel when Advance or Set reaches
// Now()+d.
func (c *Fake) NewTimer(d time.Duration) (Timer, <-chan time.Time) {
	ch := make(chan time.Time, 1)
	t := c.AfterFunc(d, func() {
		select {
		case ch <- c.Now():
		default:
		}
	})
	return t, ch
}

// NewTicker sends the fake time on the channel each time Advance or Set
// passes another d; a tick not yet taken is dropped, as time.Ticker does.
func (c *Fake) NewTicker(d time.Duration) (Ticker, <-chan time.Time) {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	tk := &fakeTicker{c: c, d: d, ch: make(chan time.Time, 1)}
	tk.schedule()
	return tk, tk.ch
}

type fakeTicker struct {
	c  *Fake
	d  time.Duration
	ch chan time.Time

	mu      sync.Mutex
	t       Timer
	stopped bool
}

func (tk *fakeTicker) schedule() {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	if !tk.stopped {
		tk.t = tk.c.AfterFunc(tk.d, tk.fire)
	}
}

func (tk *fakeTicker) fire() {
	tk.mu.Lock()
	stopped := tk.stopped
	tk.mu.Unlock()
	if stopped {
		return
	}
	select {
	case tk.ch <- tk.c.Now():
	default:
	}
	tk.schedule()
}

func (tk *fakeTicker) Stop() {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	tk.stopped = true
	if tk.t != nil {
		tk.t.Stop()
	}
}

// Advance moves time forward by d, running every callback that falls due,
// each with Now() equal to its due time.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	c.Set(end)
}

// Set moves time to t (never backwards), running due callbacks in order.
func (c *Fake) Set(end time.Time) {
	for {
		c.mu.Lock()
		var next *fakeTimer
		for _, t := range c.timers {
			if t.done || t.at.After(end) {
				continue
			}
			if next == nil || t.at.Before(next.at) || (t.at.Equal(next.at) && t.seq < next.seq) {
				next = t
			}
		}
		if next == nil {
			if end.After(c.now) {
				c.now = end
			}
			c.compact()
			c.mu.Unlock()
			return
		}
		next.done = true
		if next.at.After(c.now) {
			c.now = next.at
		}
		c.mu.Unlock()
		next.f()
	}
}

// Pending returns how many callbacks are scheduled and not yet run or stopped.
func (c *Fake) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.done {
			n++
		}
	}
	return n
}

func (c *Fake) compact() {
	live := c.timers[:0]
	for _, t := range c.timers {
		if !t.done {
			live = append(live, t)
		}
	}
	c.timers = live
}
