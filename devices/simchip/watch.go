package simchip

import (
	"context"
	"testing"
	"time"

	"github.com/hallguard/hallguard/devices"
)

// Watch runs in.Watch in a goroutine until ctx is done. Its events go to the
// first channel, which holds far more than any test sends, and what Watch
// returns to the second.
func Watch(ctx context.Context, in devices.Input) (<-chan devices.Event, <-chan error) {
	evs := make(chan devices.Event, 100000)
	done := make(chan error, 1)
	go func() { done <- in.Watch(ctx, func(ev devices.Event) { evs <- ev }) }()
	return evs, done
}

// Next returns the next event, failing t when none comes within d.
func Next(t testing.TB, evs <-chan devices.Event, within time.Duration) devices.Event {
	t.Helper()
	return receive(t, evs, within, "no event within %v")
}

// Result returns what Watch returned, failing t when it has not returned
// within d.
func Result(t testing.TB, done <-chan error, within time.Duration) error {
	t.Helper()
	return receive(t, done, within, "Watch did not return within %v")
}

// receive returns the next value from ch, failing t with the message
// (given within) when none comes within d.
func receive[T any](t testing.TB, ch <-chan T, within time.Duration, format string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(within):
		t.Fatalf(format, within)
		var zero T
		return zero
	}
}

// Quiet collects events until none arrives for d.
func Quiet(evs <-chan devices.Event, d time.Duration) []devices.Event {
	var got []devices.Event
	for {
		select {
		case ev := <-evs:
			got = append(got, ev)
		case <-time.After(d):
			return got
		}
	}
}
