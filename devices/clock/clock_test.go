package clock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hallguard/hallguard/devices/clock"
)

var t0 = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

// nothingOn fails the test with what, and the time found, if a time is
// waiting on ch.
func nothingOn(t *testing.T, ch <-chan time.Time, what string) {
	t.Helper()
	select {
	case at := <-ch:
		t.Fatalf("%s (at %v)", what, at)
	default:
	}
}

func TestFakeTimerFiresOnceAtItsTime(t *testing.T) {
	c := clock.NewFake(t0)
	_, ch := c.NewTimer(2 * time.Second)
	c.Advance(1999 * time.Millisecond)
	nothingOn(t, ch, "timer fired before its time")
	c.Advance(time.Millisecond)
	select {
	case at := <-ch:
		if !at.Equal(t0.Add(2 * time.Second)) {
			t.Fatalf("fired at %v, want %v", at, t0.Add(2*time.Second))
		}
	default:
		t.Fatal("timer did not fire at its time")
	}
	c.Advance(time.Hour)
	nothingOn(t, ch, "timer fired twice")
}

func TestFakeTimerStopPreventsTheSend(t *testing.T) {
	c := clock.NewFake(t0)
	tm, ch := c.NewTimer(time.Second)
	if !tm.Stop() {
		t.Fatal("Stop of a pending timer reported false")
	}
	c.Advance(time.Minute)
	nothingOn(t, ch, "stopped timer fired")
}

func TestFakeTickerTicksEveryIntervalAndDropsUntaken(t *testing.T) {
	c := clock.NewFake(t0)
	tk, ch := c.NewTicker(10 * time.Second)
	var got []time.Time
	for i := 0; i < 3; i++ {
		c.Advance(10 * time.Second)
		select {
		case at := <-ch:
			got = append(got, at)
		default:
			t.Fatalf("tick %d missing", i)
		}
	}
	for i, at := range got {
		if want := t0.Add(time.Duration(i+1) * 10 * time.Second); !at.Equal(want) {
			t.Errorf("tick %d at %v, want %v", i, at, want)
		}
	}
	// Untaken ticks are not queued: after 5 intervals, one tick waits.
	c.Advance(50 * time.Second)
	n := 0
	for len(ch) > 0 {
		<-ch
		n++
	}
	if n != 1 {
		t.Errorf("%d ticks queued after 5 untaken intervals, want 1", n)
	}
	tk.Stop()
	c.Advance(time.Minute)
	if len(ch) != 0 {
		t.Error("tick after Stop")
	}
	if c.Pending() != 0 {
		t.Errorf("%d callbacks left after Stop", c.Pending())
	}
}

func TestSleepReturnsWhenTimeHasPassedOrContextEnds(t *testing.T) {
	c := clock.NewFake(t0)
	done := make(chan error, 1)
	go func() { done <- clock.Sleep(context.Background(), c, time.Hour) }()
	for c.Pending() == 0 {
		time.Sleep(time.Millisecond)
	}
	c.Advance(time.Hour)
	if err := <-done; err != nil {
		t.Fatalf("Sleep: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- clock.Sleep(ctx, c, time.Hour) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep after cancel: %v, want context.Canceled", err)
	}
}

func TestRealTickerAndSleep(t *testing.T) {
	var c clock.Clock = clock.Real{}
	tk, ch := c.NewTicker(time.Millisecond)
	<-ch
	tk.Stop()
	if err := clock.Sleep(context.Background(), c, time.Millisecond); err != nil {
		t.Fatal(err)
	}
}

func TestEveryCallsOnEachTickUntilTheContextEnds(t *testing.T) {
	c := clock.NewFake(t0)
	got := make(chan time.Time, 1)
	loop := clock.Every(c, time.Minute, func(now time.Time) { got <- now })
	// The ticker runs from Every: a tick before the loop starts is kept.
	c.Advance(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		loop(ctx)
	}()
	for i := 1; i <= 3; i++ {
		if i > 1 {
			c.Advance(time.Minute)
		}
		if at := <-got; !at.Equal(t0.Add(time.Duration(i) * time.Minute)) {
			t.Fatalf("tick %d at %v, want %v", i, at, t0.Add(time.Duration(i)*time.Minute))
		}
	}
	cancel()
	<-done
	if n := c.Pending(); n != 0 {
		t.Fatalf("%d timers left after the loop ended, want the ticker stopped", n)
	}
	c.Advance(time.Hour)
	nothingOn(t, got, "called after the loop ended")
}
