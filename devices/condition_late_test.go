package devices_test

import (
	"slices"
	"testing"
	"time"

	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/clock"
)

// TestDebounceFollowsEdgeTimesWhenTheTimerIsLate: the quiet period is timed
// on the clock, which a starved process reads late, but the edges carry
// their own times. A press, its release 5 ms later (inside the 20 ms
// lockout) and a new press 80 ms after that are three changes, even when
// the lockout's timer has not run by the time the new press arrives. The
// soak found this: on a loaded machine the release and the next press were
// both swallowed as bounce, and the second robbery was never raised.
func TestDebounceFollowsEdgeTimesWhenTheTimerIsLate(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name  string
		edges []edge // times after t0; the fake clock stays at t0 throughout
		want  []string
	}{
		{"release in the lockout, press long after", []edge{{0, devices.High, 0}, {5 * ms, devices.Low, 0}, {85 * ms, devices.High, 0}},
			[]string{"0s active", "5ms inactive", "85ms active"}},
		{"a bounce inside the period is still a bounce", []edge{{0, devices.High, 0}, {5 * ms, devices.Low, 0}, {15 * ms, devices.High, 0}},
			[]string{"0s active"}},
		{"quiet report, then a second period", []edge{{0, devices.High, 0}, {5 * ms, devices.Low, 0}, {30 * ms, devices.High, 0}, {70 * ms, devices.Low, 0}},
			[]string{"0s active", "5ms inactive", "30ms active", "70ms inactive"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(t0)
			rec := &trace{}
			c := devices.NewConditioner(devices.ConditionSpec{Contact: devices.NO, Debounce: 20 * ms}, clk, rec)
			c.Start(devices.Low, clk.Now())
			for i, e := range tc.edges {
				c.Edge(devices.Event{Line: "in", Level: e.level, Time: t0.Add(e.at), Seq: uint64(i + 1)})
			}
			rec.mu.Lock()
			got := slices.Clone(rec.out)
			rec.mu.Unlock()
			if !slices.Equal(got, tc.want) {
				t.Errorf("before the timers run: reported %q, want %q", got, tc.want)
			}
			// When the late timers do run, nothing more is reported: the
			// line's last level is already the reported one.
			clk.Advance(time.Second)
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if !slices.Equal(rec.out, tc.want) {
				t.Errorf("after the timers ran: reported %q, want %q", rec.out, tc.want)
			}
		})
	}
}
