package gpiocdev

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/devices/simchip"
)

// fakeRequest is a requested line whose level and errors tests set.
type fakeRequest struct {
	mu       sync.Mutex
	value    int
	err      error // returned by Value
	closed   int   // Close calls
	closeErr error
}

func (r *fakeRequest) Value() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.value, r.err
}

func (r *fakeRequest) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed++
	return r.closeErr
}

func (r *fakeRequest) set(v int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.value, r.err = v, err
}

func (r *fakeRequest) closes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

var testWall = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// testInput returns an input over a fakeRequest, with a fake wall clock at
// testWall and CLOCK_MONOTONIC fixed at 1000 s. Probing uses the request's
// Value every second when probe is set.
func testInput(t *testing.T, queue int, probe bool) (*input, *fakeRequest, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(testWall)
	in := newInput("panic1", queue, clk, func() time.Duration { return 1000 * time.Second })
	req := &fakeRequest{}
	in.req = req
	if probe {
		in.probeEvery = time.Second
		in.probe = req.Value
	}
	t.Cleanup(func() { in.Close() })
	return in, req, clk
}

// next and result wait 5 s for an event or for Watch's result.
func next(t *testing.T, evs <-chan devices.Event) devices.Event {
	t.Helper()
	return simchip.Next(t, evs, 5*time.Second)
}

func result(t *testing.T, done <-chan error) error {
	t.Helper()
	return simchip.Result(t, done, 5*time.Second)
}

// noEvent fails t, saying what, if an event is already waiting on evs.
func noEvent(t *testing.T, evs <-chan devices.Event, what string) {
	t.Helper()
	select {
	case ev := <-evs:
		t.Fatalf("%s: %+v", what, ev)
	default:
	}
}

// waitPending waits until the fake clock has n timers scheduled.
func waitPending(t *testing.T, clk *clock.Fake, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for clk.Pending() != n {
		if time.Now().After(deadline) {
			t.Fatalf("fake clock has %d timers pending, want %d", clk.Pending(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWatchDeliversInOrder(t *testing.T) {
	in, _, _ := testInput(t, 16, false)
	evs, _ := simchip.Watch(context.Background(), in)
	for i := uint32(1); i <= 5; i++ {
		in.push(rawEvent{ts: 1000*time.Second - time.Duration(6-i)*time.Millisecond, rising: i%2 == 1, seqno: i})
	}
	for i := uint64(1); i <= 5; i++ {
		ev := next(t, evs)
		want := devices.Event{Line: "panic1", Level: i%2 == 1, Seq: i, Time: testWall.Add(-time.Duration(6-i) * time.Millisecond)}
		if ev.Line != want.Line || ev.Level != want.Level || ev.Seq != want.Seq || ev.Lost != 0 || !ev.Time.Equal(want.Time) {
			t.Errorf("event %d = %+v, want %+v", i, ev, want)
		}
	}
	if n := in.LostEdges(); n != 0 {
		t.Errorf("LostEdges = %d, want 0", n)
	}
}

func TestWatchReportsSeqnoGap(t *testing.T) {
	in, _, _ := testInput(t, 16, false)
	evs, _ := simchip.Watch(context.Background(), in)
	in.push(rawEvent{rising: true, seqno: 1})
	in.push(rawEvent{rising: false, seqno: 5}) // the kernel buffer overflowed
	if ev := next(t, evs); ev.Lost != 0 {
		t.Errorf("first event Lost = %d, want 0", ev.Lost)
	}
	if ev := next(t, evs); ev.Lost != 3 || ev.Seq != 5 || ev.Level != devices.Low {
		t.Errorf("second event = %+v, want Seq 5 Lost 3 Level low", ev)
	}
	if n := in.LostEdges(); n != 3 {
		t.Errorf("LostEdges = %d, want 3", n)
	}
}

// A full queue drops its oldest events, keeps the newest (the current level)
// and the drops show up as Lost.
func TestPushDropsOldestWhenFull(t *testing.T) {
	in, _, _ := testInput(t, 4, false)
	const n = 100
	for i := uint32(1); i <= n; i++ {
		in.push(rawEvent{rising: i%2 == 1, seqno: i})
	}
	evs, _ := simchip.Watch(context.Background(), in)
	var delivered, lost uint64
	var lastEv devices.Event
	for range 4 {
		lastEv = next(t, evs)
		delivered++
		lost += lastEv.Lost
	}
	if lastEv.Seq != n || lastEv.Level != devices.Low {
		t.Errorf("last event = %+v, want Seq %d Level low (the newest)", lastEv, n)
	}
	if delivered+lost != n {
		t.Errorf("delivered %d + lost %d != %d pushed", delivered, lost, n)
	}
	if in.LostEdges() != lost {
		t.Errorf("LostEdges = %d, want %d", in.LostEdges(), lost)
	}
}

// Without kernel sequence numbers (uAPI v1) queue drops are still counted.
func TestPushDropsCountedWithoutSeqno(t *testing.T) {
	in, _, _ := testInput(t, 2, false)
	for i := range 10 {
		in.push(rawEvent{rising: i%2 == 0})
	}
	evs, _ := simchip.Watch(context.Background(), in)
	first, second := next(t, evs), next(t, evs)
	if first.Lost+second.Lost != 8 || in.LostEdges() != 8 {
		t.Errorf("Lost %d+%d, LostEdges %d; want 8 in all", first.Lost, second.Lost, in.LostEdges())
	}
	if first.Seq != 1 || second.Seq != 2 {
		t.Errorf("Seq %d, %d; want 1, 2", first.Seq, second.Seq)
	}
}

func TestWatchStops(t *testing.T) {
	t.Run("context", func(t *testing.T) {
		in, _, _ := testInput(t, 4, true)
		ctx, cancel := context.WithCancel(context.Background())
		_, done := simchip.Watch(ctx, in)
		cancel()
		if err := result(t, done); err != nil {
			t.Errorf("Watch after cancel = %v, want nil", err)
		}
	})
	t.Run("close", func(t *testing.T) {
		in, req, _ := testInput(t, 4, true)
		_, done := simchip.Watch(context.Background(), in)
		if err := in.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := result(t, done); err != nil {
			t.Errorf("Watch after Close = %v, want nil", err)
		}
		if err := in.Close(); err != nil {
			t.Errorf("second Close = %v, want nil", err)
		}
		if n := req.closes(); n != 1 {
			t.Errorf("request closed %d times, want 1", n)
		}
	})
	t.Run("second watch", func(t *testing.T) {
		in, _, _ := testInput(t, 4, false)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		simchip.Watch(ctx, in)
		deadline := time.Now().Add(5 * time.Second)
		for !in.watching.Load() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if err := in.Watch(ctx, func(devices.Event) {}); !errors.Is(err, errWatching) {
			t.Errorf("second Watch = %v, want errWatching", err)
		}
	})
}

// A failing probe ends Watch with ErrLineLost, after delivering what was
// queued, and releases the line.
func TestWatchLineLost(t *testing.T) {
	in, req, clk := testInput(t, 16, true)
	in.push(rawEvent{rising: true, seqno: 1})
	in.push(rawEvent{rising: false, seqno: 2})
	req.set(0, syscall.ENODEV)
	var got []devices.Event
	done := make(chan error, 1)
	go func() { done <- in.Watch(context.Background(), func(ev devices.Event) { got = append(got, ev) }) }()
	waitPending(t, clk, 1)
	clk.Advance(time.Second)
	err := result(t, done)
	if !errors.Is(err, devices.ErrLineLost) || !errors.Is(err, syscall.ENODEV) {
		t.Errorf("Watch = %v, want ErrLineLost wrapping ENODEV", err)
	}
	if len(got) != 2 {
		t.Errorf("delivered %d events before the loss, want the 2 queued", len(got))
	}
	if n := req.closes(); n != 1 {
		t.Errorf("request closed %d times after loss, want 1", n)
	}
	if _, err := in.Read(); !errors.Is(err, devices.ErrLineLost) {
		t.Errorf("Read after loss = %v, want ErrLineLost", err)
	}
	if err := in.Close(); err != nil {
		t.Errorf("Close after loss = %v, want nil", err)
	}
	if n := req.closes(); n != 1 {
		t.Errorf("request closed %d times after Close, want 1", n)
	}
}

// Two probes in a row that read a level no event reported deliver it, so a
// lost interrupt cannot hide a press.
func TestWatchResyncsLevel(t *testing.T) {
	in, req, clk := testInput(t, 16, true)
	evs, _ := simchip.Watch(context.Background(), in)
	waitPending(t, clk, 1)
	req.set(1, nil) // pressed, but no edge event comes
	clk.Advance(time.Second)
	waitPending(t, clk, 1)
	noEvent(t, evs, "event after one mismatching probe")
	clk.Advance(time.Second)
	ev := next(t, evs)
	if ev.Level != devices.High || ev.Lost != 1 || !ev.Time.Equal(testWall.Add(2*time.Second)) {
		t.Errorf("resync event = %+v, want High, Lost 1 at %v", ev, testWall.Add(2*time.Second))
	}
	if in.LostEdges() != 1 {
		t.Errorf("LostEdges = %d, want 1", in.LostEdges())
	}
	// The edge event arriving late at the same level is delivered as is.
	in.push(rawEvent{rising: true, seqno: 1})
	if ev := next(t, evs); ev.Level != devices.High || ev.Lost != 0 {
		t.Errorf("late edge = %+v, want High Lost 0", ev)
	}
}

// A probe that agrees with the delivered level, or an event in between,
// resets the mismatch count.
func TestWatchNoResyncWhenEventsArrive(t *testing.T) {
	in, req, clk := testInput(t, 16, true)
	evs, _ := simchip.Watch(context.Background(), in)
	waitPending(t, clk, 1)
	req.set(1, nil)
	clk.Advance(time.Second) // mismatch 1
	waitPending(t, clk, 1)
	in.push(rawEvent{rising: true, seqno: 1})
	if ev := next(t, evs); ev.Lost != 0 {
		t.Errorf("edge = %+v, want Lost 0", ev)
	}
	clk.Advance(time.Second)
	waitPending(t, clk, 1)
	clk.Advance(time.Second)
	waitPending(t, clk, 1)
	noEvent(t, evs, "unexpected resync event")
}

func TestRead(t *testing.T) {
	in, req, _ := testInput(t, 4, false)
	req.set(1, nil)
	if l, err := in.Read(); err != nil || l != devices.High {
		t.Errorf("Read = %v, %v; want high", l, err)
	}
	req.set(0, nil)
	if l, err := in.Read(); err != nil || l != devices.Low {
		t.Errorf("Read = %v, %v; want low", l, err)
	}
	req.set(0, syscall.ENODEV)
	if _, err := in.Read(); !errors.Is(err, devices.ErrLineLost) {
		t.Errorf("Read with ENODEV = %v, want ErrLineLost", err)
	}
	req.set(0, syscall.EPERM)
	if _, err := in.Read(); err == nil || errors.Is(err, devices.ErrLineLost) {
		t.Errorf("Read with EPERM = %v, want a plain error", err)
	}
}

// fakeSetter records the values driven and the order of calls.
type fakeSetter struct {
	calls []string
	err   error
}

func (s *fakeSetter) SetValue(v int) error {
	s.calls = append(s.calls, map[int]string{0: "set0", 1: "set1"}[v])
	return s.err
}

func (s *fakeSetter) Close() error {
	s.calls = append(s.calls, "close")
	return nil
}

func TestOutput(t *testing.T) {
	s := &fakeSetter{}
	o := devices.NewLineOutput("gpiocdev", "siren", &output{id: "siren", req: s}, devices.Low, nil)
	if err := o.Set(devices.High); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if err := o.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := o.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if err := o.Set(devices.High); !errors.Is(err, devices.ErrClosed) {
		t.Errorf("Set after Close = %v, want ErrClosed", err)
	}
	want := []string{"set1", "set0", "close"}
	if len(s.calls) != len(want) {
		t.Fatalf("calls %v, want %v", s.calls, want)
	}
	for i := range want {
		if s.calls[i] != want[i] {
			t.Fatalf("calls %v, want %v", s.calls, want)
		}
	}
}

// Close releases the line even when driving the fail-safe level fails.
func TestOutputCloseReleasesOnError(t *testing.T) {
	s := &fakeSetter{err: syscall.ENODEV}
	o := devices.NewLineOutput("gpiocdev", "siren", &output{id: "siren", req: s}, devices.High, nil)
	err := o.Close()
	if !errors.Is(err, devices.ErrLineLost) {
		t.Errorf("Close = %v, want ErrLineLost", err)
	}
	if len(s.calls) != 2 || s.calls[1] != "close" {
		t.Errorf("calls %v, want set then close", s.calls)
	}
}
