package daemon_test

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// metricValue returns the value of the sample whose name and labels start
// with series, or -1 if there is none.
func (r *running) metricValue(series string) float64 {
	r.t.Helper()
	for _, l := range strings.Split(r.metrics(), "\n") {
		if rest, ok := strings.CutPrefix(l, series); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// An engine stall long enough to fill the per-input hand-off buffer (here
// Engine.Hold; in the field a slow log write under the engine's lock) must
// end with the engine holding the line's true level: a smoke detector that
// chatters and then latches in alarm must end active, never at whatever
// level the buffer happened to hold when it filled (§4.4; a missed alarm
// is the worst bug).
func TestHandoffOverflowKeepsFinalLevel(t *testing.T) {
	r := start(t)
	door := r.sim.Input("door-1")
	door.Press()
	r.eventually("door-1 active", func() bool { return r.metricValue(`hallguard_input_active{input="door-1",kind="generic"}`) == 1 })

	release := r.d.Engine().Hold()
	held := true
	defer func() {
		if held {
			release()
		}
	}()
	// The release reaches conditioning, which blocks on the held engine.
	door.Release()
	time.Sleep(100 * time.Millisecond) // lets the hand-off goroutine take it (not an assertion)
	// 2000 more edges, many more than the buffer holds, ending pressed.
	for i := 0; i < 2000; i++ {
		if i%2 == 0 {
			door.Press()
		} else {
			door.Release()
		}
	}
	door.Press()
	release()
	held = false

	r.eventually("door-1 back at its true level, active", func() bool {
		return r.metricValue(`hallguard_input_active{input="door-1",kind="generic"}`) == 1
	})
	// The stall is not papered over: the drops are counted.
	if v := r.metricValue(`hallguard_input_handoff_dropped_total{input="door-1"}`); v <= 0 {
		t.Errorf("hand-off drops not counted (hallguard_input_handoff_dropped_total = %v)", v)
	}
	// And it stays at its true level once conditioning has settled.
	time.Sleep(200 * time.Millisecond)
	if v := r.metricValue(`hallguard_input_active{input="door-1",kind="generic"}`); v != 1 {
		t.Errorf("door-1 active = %v after settling, want 1 (the line is pressed)", v)
	}
}
