package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/engine"
)

func raiseAndResolve(t *testing.T, h *hall) string {
	t.Helper()
	c := staff(engine.VerbTrigger)
	c.Playbook = "illness"
	id := h.do(c)
	res := staff(engine.VerbResolve)
	res.Incident = id
	h.do(res)
	return id
}

func held(h *hall, id string) bool {
	if _, ok := h.eng.Incident(id); ok {
		return true
	}
	for _, inc := range h.eng.Incidents() {
		if inc.ID == id {
			return true
		}
	}
	return false
}

// A reviewed incident leaves the engine's memory (the journal keeps it).
func TestReviewedIncidentLeavesEngineMemory(t *testing.T) {
	h := newHall(t, "")
	id := raiseAndResolve(t, h)
	if !held(h, id) {
		t.Fatal("a just resolved incident is not held")
	}
	rv := staff(engine.VerbReview)
	rv.Incident = id
	rv.Review = &engine.Review{Cause: "heat", Course: "fainted", Handling: "first aid", Problems: "none"}
	h.do(rv)
	if held(h, id) {
		t.Errorf("reviewed incident %s still held in memory", id)
	}
	if r := last(t, h.sink.ReportsOf("illness")); r.Event != engine.EventReviewed || r.Incident != id {
		t.Errorf("reviewed report %s %s", r.Event, r.Incident)
	}
}

// A resolved incident not reviewed leaves memory past incidents.retention,
// and can still be reviewed, and still counts as overdue (§3.4).
func TestResolvedIncidentLeavesMemoryAfterRetention(t *testing.T) {
	h := newHall(t, "")
	id := raiseAndResolve(t, h)
	open := staff(engine.VerbTrigger)
	open.Playbook = "besieged"
	openID := h.do(open)
	h.clk.Advance(h.cfg.Incidents.Retention.D() + time.Hour)
	if held(h, id) {
		t.Errorf("resolved incident %s still held past incidents.retention %s", id, h.cfg.Incidents.Retention.D())
	}
	if !held(h, openID) {
		t.Errorf("open incident %s left memory", openID)
	}
	h.clk.Advance(8 * 24 * time.Hour)
	if n := h.eng.Unreviewed(); n != 1 {
		t.Errorf("unreviewed = %d after eviction, want 1", n)
	}
	rv := staff(engine.VerbReview)
	rv.Incident = id
	rv.Review = &engine.Review{Cause: "heat", Course: "fainted", Handling: "first aid", Problems: "none"}
	if _, err := h.eng.Do(rv); err != nil {
		t.Fatalf("review after eviction: %v", err)
	}
	if n := h.eng.Unreviewed(); n != 0 {
		t.Errorf("unreviewed = %d after the review", n)
	}
}

// However many incidents are resolved within the retention, the engine
// holds at most incidents.max_resolved of them, the newest.
func TestResolvedIncidentsHeldAreBounded(t *testing.T) {
	h := newHall(t, "")
	max := h.cfg.Incidents.MaxResolved
	var ids []string
	for i := 0; i < max+50; i++ {
		ids = append(ids, raiseAndResolve(t, h))
		h.clk.Advance(time.Second)
	}
	if n := len(h.eng.Incidents()); n != max {
		t.Errorf("incidents held = %d, want incidents.max_resolved %d", n, max)
	}
	if held(h, ids[0]) || !held(h, ids[len(ids)-1]) {
		t.Errorf("held the oldest (%v) or not the newest (%v)", held(h, ids[0]), held(h, ids[len(ids)-1]))
	}
}

// /api/incidents pages: newest first, limit, before (the previous page's
// last id), state open or closed.
func TestIncidentPage(t *testing.T) {
	h := newHall(t, "")
	n := 0
	cfgIDs := func(time.Time) string { n++; return fmt.Sprintf("inc-%03d", n) }
	h.eng = engine.New(h.cfg, h.sink.Sinks(), engine.WithClock(h.clk), engine.WithIDs(cfgIDs))
	h.eng.Start()
	defer h.eng.Close()
	for i := 0; i < 5; i++ {
		raiseAndResolve(t, h) // inc-001..inc-005
	}
	open := staff(engine.VerbTrigger)
	open.Playbook = "besieged"
	if _, err := h.eng.Do(open); err != nil { // inc-006
		t.Fatal(err)
	}
	ids := func(p engine.IncidentPage) string {
		s := ""
		for _, inc := range p.Incidents {
			s += inc.ID[4:] + " "
		}
		return s + "next=" + p.Next
	}
	for _, tc := range []struct {
		q    engine.IncidentQuery
		want string
	}{
		{engine.IncidentQuery{}, "006 005 004 003 002 001 next="},
		{engine.IncidentQuery{Limit: 2}, "006 005 next=inc-005"},
		{engine.IncidentQuery{Limit: 2, Before: "inc-005"}, "004 003 next=inc-003"},
		{engine.IncidentQuery{Limit: 2, Before: "inc-003"}, "002 001 next="},
		{engine.IncidentQuery{State: engine.QueryOpen}, "006 next="},
		{engine.IncidentQuery{State: engine.QueryClosed, Limit: 3}, "005 004 003 next=inc-003"},
	} {
		if got := ids(h.eng.IncidentPage(tc.q)); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.q, got, tc.want)
		}
	}
}

// However many incidents wait for their review, the review_overdue
// condition stays small: it names the oldest and counts the rest.
func TestReviewOverdueConditionIsBounded(t *testing.T) {
	h := newHall(t, "")
	for i := 0; i < 80; i++ {
		raiseAndResolve(t, h)
	}
	h.clk.Advance(8 * 24 * time.Hour)
	cs := h.sink.ConditionsOf("review_overdue")
	if len(cs) == 0 {
		t.Fatal("no review_overdue")
	}
	c := cs[len(cs)-1]
	if c.Count != 80 || !strings.HasSuffix(c.Detail, "and 30 more") || !strings.Contains(c.Detail, "inc-1 ") {
		t.Errorf("review_overdue count %d detail %q, want 80, the oldest 50 named and 30 more", c.Count, c.Detail)
	}
	if n := h.eng.Unreviewed(); n != 80 {
		t.Errorf("unreviewed = %d, want 80", n)
	}
}

// A reviewed incident leaves memory at once, yet a second review of it is
// refused as reviewed (not allowed), as after a restart, not as an
// incident nobody knows: the center that resends a review must learn it
// was filed.
func TestSecondReviewOfAnIncidentThatLeftMemoryIsRefusedAsReviewed(t *testing.T) {
	h := newHall(t, "")
	id := raiseAndResolve(t, h)
	rv := staff(engine.VerbReview)
	rv.Incident = id
	rv.Review = &engine.Review{Cause: "heat", Course: "fainted", Handling: "first aid", Problems: "none"}
	h.do(rv)
	if _, err := h.eng.Do(rv); !errors.Is(err, engine.ErrNotAllowed) {
		t.Errorf("second review: %v, want not allowed (incident is reviewed)", err)
	}
}
