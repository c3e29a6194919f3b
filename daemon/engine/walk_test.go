package engine_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/engine"
)

// walkStart starts a walk test covering names, from an authenticated
// command.
func walkStart(t *testing.T, h *hall, names ...string) string {
	t.Helper()
	w := staff(engine.VerbDrill)
	w.Action, w.Authenticated, w.Inputs = engine.WalkStart, true, names
	return h.do(w)
}

func walkStop(t *testing.T, h *hall) {
	t.Helper()
	w := staff(engine.VerbDrill)
	w.Action = engine.WalkStop
	h.do(w)
}

func walks(h *hall) []engine.WalkRecord {
	h.sink.Lock()
	defer h.sink.Unlock()
	return slices.Clone(h.sink.Walks)
}

// A walk test names what it covers; every other input stays live: a
// panic button or call point it does not cover raises its playbook.
func TestWalkTestLeavesInputsItDoesNotNameLive(t *testing.T) {
	h := newHall(t, "")
	walkStart(t, h, "call-1", "smoke-1")
	h.pulse("call-1") // covered: proves the wiring, raises nothing
	if n := len(h.sink.ReportsOf("fire")); n != 0 {
		t.Fatalf("a covered call point raised %d fire reports", n)
	}
	h.press("panic-2") // not covered: a real robbery
	rob := h.sink.ReportsOf("robbery")
	if len(rob) != 1 || rob[0].Test || rob[0].Drill || !h.sink.Level("police-link") {
		t.Fatalf("uncovered panic button during a walk test: reports %+v police-link %v, want a real robbery", rob, h.sink.Level("police-link"))
	}
	h.press("smoke-2") // not covered: verification runs as always
	h.clk.Advance(h.cfg.Smoke.VerifyWindow.D() + time.Second)
	if fire := h.sink.ReportsOf("fire"); len(fire) != 1 || fire[0].Test {
		t.Fatalf("uncovered smoke detector during a walk test: fire reports %+v", fire)
	}
	cs := h.sink.ConditionsOf("walk_test")
	if len(cs) == 0 || !strings.Contains(cs[0].Detail, "covers smoke-1, call-1") || cs[0].Count != 2 {
		t.Errorf("walk_test condition %+v does not name what it covers", cs)
	}
}

// A walk test must name at least one known input or zone.
func TestWalkTestNamesKnownInputsOrZones(t *testing.T) {
	h := newHall(t, "")
	for _, names := range [][]string{nil, {"nope"}} {
		w := staff(engine.VerbDrill)
		w.Action, w.Authenticated, w.Inputs = engine.WalkStart, true, names
		if _, err := h.eng.Do(w); !errors.Is(err, engine.ErrBadCommand) {
			t.Errorf("walk_start %v: err %v, want a bad command", names, err)
		}
	}
	h.cfg.Inputs[2].Zone = "hall-detectors" // smoke-1
	h.cfg.Inputs[3].Zone = "hall-detectors" // smoke-2
	walkStart(t, h, "hall-detectors", "call-1")
	walkStop(t, h)
	ws := walks(h)
	if len(ws) != 1 || !slices.Equal(ws[0].Covers, []string{"smoke-1", "smoke-2", "call-1"}) ||
		!slices.Equal(ws[0].Named, []string{"hall-detectors", "call-1"}) || len(ws[0].Inputs) != 3 {
		t.Errorf("walk record %+v", ws)
	}
}

// Hold-up inputs are never silently suppressed: every press during a walk
// test reaches the center on the normal alerts topic (not drill), flagged
// test: true, and nothing in the hall acts.
func TestHoldUpPressDuringWalkTestReachesTheCenterAsTest(t *testing.T) {
	h := newHall(t, "")
	walk := walkStart(t, h, "panic-1", "panic-2")
	for _, id := range []string{"panic-1", "panic-1", "panic-2"} {
		h.press(id)
		h.clk.Advance(time.Second)
		h.release(id)
		h.clk.Advance(time.Second)
	}
	rob := h.sink.ReportsOf("robbery")
	if len(rob) != 3 {
		t.Fatalf("three hold-up presses during a walk test: %d reports, want 3: %+v", len(rob), rob)
	}
	for i, r := range rob {
		if !r.Test || r.Drill || r.Incident != rob[0].Incident {
			t.Errorf("report %d: test %v drill %v incident %s, want test reports of one incident", i, r.Test, r.Drill, r.Incident)
		}
	}
	if rob[0].Event != engine.EventRaised || rob[2].Presses != 3 || !slices.Equal(rob[2].Inputs, []string{"panic-1", "panic-2"}) ||
		!strings.Contains(rob[0].Other, walk) {
		t.Errorf("reports %+v", rob)
	}
	if len(h.sink.Drives) != 0 {
		t.Errorf("a walk test's hold-up press drove outputs: %+v", h.sink.Drives)
	}
	h.clk.Advance(10 * time.Minute)
	for _, r := range h.sink.ReportsOf("robbery") {
		if r.Event == engine.EventEscalation {
			t.Errorf("a walk test's hold-up press escalated: %+v", r)
		}
	}
	walkStop(t, h)
	fin := last(t, h.sink.ReportsOf("robbery"))
	if fin.Event != engine.EventResolved || !fin.Test || fin.Incident != rob[0].Incident {
		t.Errorf("at the walk test's end: %s test %v %s, want the test incident resolved", fin.Event, fin.Test, fin.Incident)
	}
	if ws := walks(h); len(ws) != 1 || ws[0].HoldUp != rob[0].Incident {
		t.Errorf("walk record %+v does not name the hold-up test incident", ws)
	}
	if n := h.eng.Unreviewed(); n != 0 {
		t.Errorf("the walk test's incident waits for a review: %d", n)
	}
	// After the walk test, a press is a real robbery.
	h.press("panic-1")
	if r := last(t, h.sink.ReportsOf("robbery")); r.Test || r.Event != engine.EventRaised || r.Incident == rob[0].Incident {
		t.Errorf("press after the walk test: %+v, want a new real robbery", r)
	}
}

// When the walk test ends, by walk_stop or by itself after WalkMax, every
// covered input still active is evaluated again and raises its playbook:
// a broken-glass call point, a latched panic button.
func TestWalkTestEndRaisesInputsStillActive(t *testing.T) {
	t.Run("walk_stop", func(t *testing.T) {
		h := newHall(t, "")
		walkStart(t, h, "call-1", "panic-1")
		h.press("call-1")
		h.press("panic-1")
		h.clk.Advance(time.Minute)
		if n := len(h.sink.ReportsOf("fire")); n != 0 {
			t.Fatalf("covered call point raised fire during the walk test")
		}
		walkStop(t, h)
		fire := h.sink.ReportsOf("fire")
		if len(fire) != 1 || fire[0].Test || !strings.Contains(fire[0].Other, "still active") || !h.sink.Level("siren") {
			t.Errorf("call point still active at the end: fire %+v siren %v", fire, h.sink.Level("siren"))
		}
		var real []engine.Report
		for _, r := range h.sink.ReportsOf("robbery") {
			if !r.Test {
				real = append(real, r)
			}
		}
		if len(real) != 1 || real[0].Event != engine.EventRaised || !h.sink.Level("police-link") {
			t.Errorf("panic button latched at the end: real robbery reports %+v", real)
		}
		ws := walks(h)
		if len(ws) != 1 || !slices.Equal(ws[0].StillActive, []string{"panic-1", "call-1"}) {
			t.Errorf("walk record still_active %+v", ws)
		}
		cs := h.sink.ConditionsOf("walk_test")
		if c := cs[len(cs)-1]; c.Active || !strings.Contains(c.Detail, "panic-1, call-1") {
			t.Errorf("walk_test cleared with %+v", c)
		}
	})
	t.Run("auto-exit", func(t *testing.T) {
		h := newHall(t, "")
		walkStart(t, h, "smoke-1")
		h.press("smoke-1")
		h.clk.Advance(engine.WalkMax)
		if len(walks(h)) != 1 {
			t.Fatalf("walk test still running after %s", engine.WalkMax)
		}
		// The detector goes through verification: still active for the
		// verify window, it is fire.
		h.clk.Advance(h.cfg.Smoke.VerifyWindow.D())
		if fire := h.sink.ReportsOf("fire"); len(fire) != 1 || fire[0].Test {
			t.Errorf("smoke still active after the walk test's auto-exit: fire %+v", fire)
		}
	})
}

// Taking inputs out of service needs an authenticated command: with
// commands.auth: none, walk_start is refused.
func TestWalkStartIsRefusedUnauthenticated(t *testing.T) {
	h := newHall(t, "")
	w := staff(engine.VerbDrill)
	w.Action, w.Inputs = engine.WalkStart, []string{"panic-1"}
	if _, err := h.eng.Do(w); !errors.Is(err, engine.ErrNotAllowed) {
		t.Fatalf("unauthenticated walk_start: err %v, want not allowed", err)
	}
	if cs := h.sink.ConditionsOf("walk_test"); len(cs) != 0 {
		t.Errorf("walk_test condition raised: %+v", cs)
	}
	h.press("panic-1")
	if r := h.sink.ReportsOf("robbery"); len(r) != 1 || r[0].Test {
		t.Errorf("after a refused walk_start: robbery %+v, want a real one", r)
	}
}

// A walk test swallows alarms, not their end: a smoke pre-alarm that
// clears during a walk test of that detector is cleared at the center.
func TestWalkTestLetsAPreAlarmClear(t *testing.T) {
	h := newHall(t, "")
	h.press("smoke-1")
	walkStart(t, h, "smoke-1")
	h.clk.Advance(5 * time.Second)
	h.release("smoke-1")
	pa := h.sink.ConditionsOf("pre_alarm")
	if len(pa) != 2 || !pa[0].Active || pa[1].Active {
		t.Errorf("pre_alarm conditions %+v, want raised then cleared", pa)
	}
}
