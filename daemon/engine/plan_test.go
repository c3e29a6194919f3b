package engine_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/daemon/engine/enginetest"
	"github.com/hallguard/hallguard/devices/clock"
)

func staff(verb engine.Verb) engine.Command {
	return engine.Command{Verb: verb, By: "Chen", Origin: engine.OriginStaff}
}

func last(t *testing.T, rs []engine.Report) engine.Report {
	t.Helper()
	if len(rs) == 0 {
		t.Fatal("no reports")
	}
	return rs[len(rs)-1]
}

// §3.3 4: a structured impact, each item unknown until given; the free
// text impact stays as it was.
func TestReportImpactDetail(t *testing.T) {
	h := newHall(t, "")
	c := staff(engine.VerbTrigger)
	c.Playbook = "illness"
	id := h.do(c)
	if r := last(t, h.sink.ReportsOf("illness")); r.ImpactDetail != nil {
		t.Errorf("initial report has impact detail %+v", r.ImpactDetail)
	}
	u := staff(engine.VerbReport)
	u.Incident, u.ImpactDetail = id, map[string]string{"casualties": "one customer fainted"}
	h.do(u)
	r := last(t, h.sink.ReportsOf("illness"))
	want := engine.ImpactDetail{Property: "unknown", CashVouchers: "unknown", Casualties: "one customer fainted", Scope: "unknown"}
	if r.Event != engine.EventUpdate || r.ImpactDetail == nil || *r.ImpactDetail != want || r.Impact != "unknown" {
		t.Errorf("update: event %s impact %q detail %+v", r.Event, r.Impact, r.ImpactDetail)
	}
	u.ImpactDetail = map[string]string{"weather": "fine"}
	if _, err := h.eng.Do(u); err == nil || !strings.Contains(err.Error(), `no "weather"`) {
		t.Errorf("unknown key: err = %v", err)
	}
	if n := len(h.sink.ReportsOf("illness")); n != 2 {
		t.Errorf("%d reports after a rejected update, want 2", n)
	}
}

// The final report holds the timeline: detected, activated, first report,
// its PUBACK, acknowledged, steps, resolved, with the durations.
func TestFinalReportTimeline(t *testing.T) {
	h := newHall(t, "")
	h.press("panic-1")
	rs := h.sink.ReportsOf("robbery")
	id := rs[0].Incident
	if rs[0].Timeline != nil {
		t.Error("the initial report has a timeline")
	}
	h.eng.Delivered("nope.v1", t0)
	h.eng.Delivered(id+".v2", t0.Add(time.Second)) // not the first report: ignored
	h.eng.Delivered(id+".v1", t0.Add(50*time.Millisecond))
	h.eng.Delivered(id+".v1", t0.Add(time.Second)) // a redelivery: the first one counts
	h.clk.Advance(10 * time.Second)
	ack := engine.Command{Verb: engine.VerbAck, Incident: id, By: "op-7", Origin: engine.OriginCenter, Authenticated: true}
	h.do(ack)
	h.clk.Advance(20 * time.Second)
	inc, _ := h.eng.Incident(id)
	st := engine.Command{Verb: engine.VerbStep, Incident: id, Step: inc.Steps[0].ID, By: "Chen", Origin: engine.OriginStaff}
	h.do(st)
	h.clk.Advance(30 * time.Second)
	res := ack
	res.Verb = engine.VerbResolve
	h.do(res)
	r := last(t, h.sink.ReportsOf("robbery"))
	tl := r.Timeline
	if r.Event != engine.EventResolved || tl == nil {
		t.Fatalf("final report: event %s timeline %v", r.Event, tl)
	}
	detected := rs[0].OccurredAt
	activated := inc.DetectedAt
	for _, c := range []struct {
		name string
		got  *time.Time
		want time.Time
	}{
		{"detected", tl.DetectedAt, detected}, {"activated", tl.ActivatedAt, activated},
		{"first report", tl.FirstReportAt, rs[0].Created}, {"delivered", tl.DeliveredAt, t0.Add(50 * time.Millisecond)},
		{"acknowledged", tl.AcknowledgedAt, activated.Add(10 * time.Second)},
		{"resolved", tl.ResolvedAt, activated.Add(60 * time.Second)},
	} {
		if c.got == nil || !c.got.Equal(c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	sec := func(p *float64) float64 {
		if p == nil {
			return -1
		}
		return *p
	}
	if got := sec(tl.ActivateToAck); got != 10 {
		t.Errorf("activate to ack = %v", got)
	}
	if got := sec(tl.ActivateToResolve); got != 60 {
		t.Errorf("activate to resolved = %v", got)
	}
	if got := sec(tl.ReportToDelivered); got < 0 || got > 0.05 {
		t.Errorf("report to delivered = %v", got)
	}
	if tl.AcknowledgedBy != "op-7" || tl.ResolvedBy != "op-7" || tl.Resolution != engine.EventResolved {
		t.Errorf("by: %+v", tl)
	}
	if s := tl.Steps[0]; !s.Done || s.By != "Chen" || sec(s.AfterSeconds) != 30 {
		t.Errorf("step 0 = %+v", s)
	}
	if s := tl.Steps[1]; s.Done || s.At != nil || s.AfterSeconds != nil {
		t.Errorf("missed step = %+v", s)
	}
	b, err := json.Marshal(tl)
	if err != nil || !strings.Contains(string(b), `"activate_to_acknowledged_seconds":10`) {
		t.Errorf("timeline JSON %s (%v)", b, err)
	}
}

func TestFalseAlarmIsClosedWithWhoAndWhy(t *testing.T) {
	h := newHall(t, "")
	h.press("panic-2")
	id := h.sink.ReportsOf("robbery")[0].Incident
	fa := engine.Command{Verb: engine.VerbFalseAlarm, Incident: id, By: "op-7", Origin: engine.OriginCenter, Authenticated: true, Reason: "knocked by a cleaner"}
	h.do(fa)
	r := last(t, h.sink.ReportsOf("robbery"))
	if r.Event != engine.EventFalseAlarm || r.State != engine.StateResolved || r.Timeline == nil ||
		r.Timeline.Resolution != engine.EventFalseAlarm || r.Timeline.Reason != "knocked by a cleaner" || r.Timeline.ResolvedBy != "op-7" {
		t.Errorf("false alarm report: %s %s %+v", r.Event, r.State, r.Timeline)
	}
	if _, ok := h.eng.Incident(id); !ok {
		t.Error("a false alarm was deleted")
	}
}

func startDrill(t *testing.T, h *hall, playbook string) string {
	t.Helper()
	c := staff(engine.VerbDrill)
	c.Action, c.Playbook, c.Participants = engine.DrillStart, playbook, []string{"Chen", "Liu"}
	id := h.do(c)
	return id
}

// §1.3: a fire drill sounds only what drill.outputs allows, never the
// power cut; stopped, it leaves a record with the measured evaluation.
func TestFireDrillRecord(t *testing.T) {
	h := newHall(t, "")
	bad := staff(engine.VerbDrill)
	bad.Action, bad.Playbook = engine.DrillStart, "fire"
	if _, err := h.eng.Do(bad); err == nil || !strings.Contains(err.Error(), "participants") {
		t.Errorf("drill without participants: %v", err)
	}
	id := startDrill(t, h, "fire")
	if _, err := h.eng.Do(func() engine.Command {
		c := staff(engine.VerbDrill)
		c.Action, c.Playbook, c.Participants = "start", "illness", []string{"x"}
		return c
	}()); err == nil {
		t.Error("a second drill started while one runs")
	}
	r := h.sink.ReportsOf("fire")[0]
	if !r.Drill || r.Event != engine.EventRaised {
		t.Errorf("drill report: drill %v event %s", r.Drill, r.Event)
	}
	h.clk.Advance(2 * time.Minute) // past the power-cut delay
	if !h.sink.Level("siren") || !h.sink.Level("strobe") {
		t.Error("siren or strobe not on in the fire drill")
	}
	if len(h.sink.DrivesOf("power-cut")) != 0 || len(h.sink.DrivesOf("door-release")) != 0 {
		t.Errorf("power-cut drives %v in a drill", h.sink.DrivesOf("power-cut"))
	}
	ack := staff(engine.VerbAck)
	ack.Incident = id
	h.do(ack)
	h.clk.Advance(time.Minute)
	st := staff(engine.VerbStep)
	st.Incident, st.Step = id, "evacuate"
	h.do(st)
	stop := staff(engine.VerbDrill)
	stop.Action = engine.DrillStop
	if got, err := h.eng.Do(stop); err != nil || got != id {
		t.Fatalf("stop: %s %v", got, err)
	}
	if h.sink.Level("siren") {
		t.Error("siren still on after the drill")
	}
	for _, r := range h.sink.ReportsOf("fire") {
		if !r.Drill {
			t.Errorf("report %s of a drill without drill: true", r.ID)
		}
	}
	ds := h.sink.Drills()
	if len(ds) != 1 {
		t.Fatalf("%d drill records", len(ds))
	}
	d := ds[0]
	if d.ID != id || !d.Drill || d.Playbook != "fire" || d.Section != "§4.4" || d.Outcome != engine.DrillCompleted ||
		d.StartedBy != "Chen" || d.EndedBy != "Chen" || strings.Join(d.Participants, ",") != "Chen,Liu" ||
		d.DurationSeconds != 180 || d.AckSeconds == nil || *d.AckSeconds != 120 || d.AcknowledgedBy != "Chen" {
		t.Errorf("record = %+v", d)
	}
	if strings.Join(d.Completed, ",") != "evacuate" || strings.Join(d.Missed, ",") != "fight_fire,call_119,cut_power,guard_key_places" {
		t.Errorf("completed %v missed %v", d.Completed, d.Missed)
	}
	for _, s := range d.Steps {
		if s.ID == "evacuate" && (s.AfterSeconds == nil || *s.AfterSeconds != 180) {
			t.Errorf("evacuate after %v", s.AfterSeconds)
		}
	}
	if !d.StartedAt.Equal(t0) || !d.EndedAt.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("times %v..%v", d.StartedAt, d.EndedAt)
	}
	ev := staff(engine.VerbDrill)
	ev.Action, ev.Drill, ev.Reason = engine.DrillEvaluate, id, "evacuation too slow at the east door"
	h.do(ev)
	ds = h.sink.Drills()
	if len(ds) != 2 || len(ds[1].Comments) != 1 || ds[1].Comments[0].Text != "evacuation too slow at the east door" || ds[1].Comments[0].By != "Chen" {
		t.Errorf("evaluated record = %+v", ds[len(ds)-1])
	}
	if got := h.eng.LastDrills()["fire"]; !got.Equal(t0.Add(3 * time.Minute)) {
		t.Errorf("last fire drill %v", got)
	}
}

// §1.3: a real alarm takes priority: the drill is aborted and recorded so.
// (A silent one does not: see TestSilentAlarmDoesNotAbortADrill.)
func TestRealAlarmAbortsDrill(t *testing.T) {
	h := newHall(t, "")
	id := startDrill(t, h, "fire")
	h.clk.Advance(time.Minute)
	real := staff(engine.VerbTrigger)
	real.Playbook = "illness"
	h.do(real)
	h.clk.Advance(30 * time.Millisecond)
	rob := h.sink.ReportsOf("illness")
	if len(rob) != 1 || rob[0].Drill {
		t.Fatalf("illness reports %+v", rob)
	}
	fire := last(t, h.sink.ReportsOf("fire"))
	if fire.Event != engine.EventResolved || !fire.Drill || !strings.Contains(fire.Measures[len(fire.Measures)-1].Text, "drill aborted: real illness incident "+rob[0].Incident) {
		t.Errorf("drill's last report %s %v", fire.Event, fire.Measures)
	}
	if fire.Seq < rob[0].Seq {
		t.Error("the drill's end was reported before the real alarm")
	}
	if h.sink.Level("siren") {
		t.Error("drill siren still on after a real alarm aborted the drill")
	}
	ds := h.sink.Drills()
	if len(ds) != 1 || ds[0].ID != id || ds[0].Outcome != engine.DrillAborted || ds[0].AbortedBy != rob[0].Incident ||
		len(ds[0].RealIncidents) != 1 || ds[0].RealIncidents[0] != rob[0].Incident {
		t.Errorf("records %+v", ds)
	}
	if _, ok := h.eng.LastDrills()["fire"]; ok {
		t.Error("an aborted drill counts as drilled")
	}
	c := staff(engine.VerbDrill)
	c.Action, c.Playbook, c.Participants = engine.DrillStart, "illness", []string{"Chen"}
	if _, err := h.eng.Do(c); err == nil || !strings.Contains(err.Error(), "real incident") {
		t.Errorf("drill during a real incident: %v", err)
	}
}

func TestDrillEndsAfterMaxDuration(t *testing.T) {
	h := newHall(t, "")
	startDrill(t, h, "illness")
	h.clk.Advance(19 * time.Minute)
	if len(h.sink.Drills()) != 0 {
		t.Fatal("drill ended before its max_duration")
	}
	h.clk.Advance(time.Minute)
	ds := h.sink.Drills()
	if len(ds) != 1 || ds[0].Outcome != engine.DrillTimedOut || ds[0].EndedBy != "hallguard" || ds[0].DurationSeconds != 1200 {
		t.Fatalf("records %+v", ds)
	}
	if r := last(t, h.sink.ReportsOf("illness")); r.State != engine.StateResolved || !r.Drill {
		t.Errorf("last report %s drill %v", r.State, r.Drill)
	}
}

func TestResolvingTheDrillIncidentEndsTheDrill(t *testing.T) {
	h := newHall(t, "")
	id := startDrill(t, h, "illness")
	c := staff(engine.VerbResolve)
	c.Incident = id
	h.do(c)
	if ds := h.sink.Drills(); len(ds) != 1 || ds[0].Outcome != engine.DrillCompleted || ds[0].EndedBy != "Chen" {
		t.Fatalf("records %+v", ds)
	}
	stop := staff(engine.VerbDrill)
	stop.Action = engine.DrillStop
	if _, err := h.eng.Do(stop); err == nil {
		t.Error("stop with no drill running")
	}
}

// §1.3 drills are regular: a playbook past its drill.interval raises the
// supervisory condition drill_overdue; last drill times come from history.
func TestOverdueDrills(t *testing.T) {
	cfg := newHall(t, "").cfg
	sink := newHallWith(t, cfg, engine.WithDrillHistory(engine.DrillHistory{
		Since: t0.Add(-100 * 24 * time.Hour),
		Records: []engine.DrillRecord{
			{ID: "d1", Playbook: "fire", Outcome: engine.DrillCompleted, EndedAt: t0.Add(-10 * 24 * time.Hour)},
			{ID: "d2", Playbook: "robbery", Outcome: engine.DrillAborted, EndedAt: t0.Add(-24 * time.Hour)},
		},
	}))
	cs := sink.ConditionsOf("drill_overdue")
	if len(cs) != 1 || !cs[0].Active || cs[0].Class != engine.ClassSupervisory || cs[0].Count != 1 ||
		!strings.HasPrefix(cs[0].Detail, "robbery (never drilled") {
		t.Fatalf("conditions %+v", cs)
	}
}

func newHallWith(t *testing.T, cfg *config.Config, opts ...engine.Option) *enginetest.Sink {
	t.Helper()
	s := &enginetest.Sink{}
	e := engine.New(cfg, s.Sinks(), append([]engine.Option{engine.WithClock(clock.NewFake(t0))}, opts...)...)
	e.Start()
	t.Cleanup(e.Close)
	return s
}

// A walk test proves each input it covers: no incident, no output (hold-up
// inputs aside: TestHoldUpPressDuringWalkTestReachesTheCenterAsTest), and a
// record of what was and was not pressed.
func TestWalkTest(t *testing.T) {
	h := newHall(t, "")
	w := staff(engine.VerbDrill)
	w.Action, w.Authenticated, w.Inputs = engine.WalkStart, true, []string{"call-1", "smoke-1", "q-in"}
	id := h.do(w)
	if cs := h.sink.ConditionsOf("walk_test"); len(cs) != 1 || !cs[0].Active || cs[0].Class != engine.ClassSupervisory {
		t.Fatalf("walk test condition %+v", cs)
	}
	h.press("q-in")
	h.release("q-in")
	h.clk.Advance(time.Second)
	h.press("call-1")
	h.release("call-1")
	h.clk.Advance(time.Second)
	if n := len(h.sink.Reports); n != 0 || len(h.sink.Drives) != 0 {
		t.Fatalf("walk test made %d reports, drives %v", n, h.sink.Drives)
	}
	w.Action = engine.WalkStop
	if got, err := h.eng.Do(w); err != nil || got != id {
		t.Fatalf("stop: %s %v", got, err)
	}
	ws := walks(h)
	if len(ws) != 1 {
		t.Fatalf("%d walk records", len(ws))
	}
	r := ws[0]
	if r.ID != id || strings.Join(r.Tested, ",") != "call-1,q-in" || strings.Join(r.Untested, ",") != "smoke-1" || r.EndedBy != "Chen" {
		t.Errorf("walk record %+v", r)
	}
	if r.Inputs[2].ID != "q-in" || r.Inputs[2].TestedAt == nil || !r.Inputs[2].TestedAt.Equal(t0) || r.Inputs[0].TestedAt != nil {
		t.Errorf("inputs %+v", r.Inputs)
	}
	if cs := h.sink.ConditionsOf("walk_test"); len(cs) != 2 || cs[1].Active {
		t.Errorf("walk test condition not cleared: %+v", cs)
	}
	// After the walk test, a press raises the alarm again.
	h.press("panic-1")
	if rs := h.sink.ReportsOf("robbery"); len(rs) != 1 || rs[0].Drill {
		t.Errorf("robbery after the walk test: %+v", rs)
	}
}

func TestWalkTestEndsByItself(t *testing.T) {
	h := newHall(t, "")
	walkStart(t, h, "panic-1")
	h.clk.Advance(engine.WalkMax)
	if len(walks(h)) != 1 {
		t.Fatalf("walk test still running after %s", engine.WalkMax)
	}
	h.press("panic-1")
	if len(h.sink.ReportsOf("robbery")) != 1 {
		t.Error("no alarm after the walk test ended")
	}
}

// The center's test command raises the input's playbook as a drill from
// that input.
func TestTestVerbRaisesADrillFromTheInput(t *testing.T) {
	h := newHall(t, "")
	c := staff(engine.VerbTest)
	c.Input = "panic-2"
	id := h.do(c)
	r := h.sink.ReportsOf("robbery")
	if len(r) != 1 || !r[0].Drill || r[0].Incident != id || r[0].Source != "panic-2" || r[0].Variant != "explosive" ||
		strings.Join(r[0].Inputs, ",") != "panic-2" || !strings.Contains(r[0].Other, "test of input panic-2") {
		t.Errorf("test report %+v", r)
	}
	if len(h.sink.DrivesOf("police-link")) != 0 {
		t.Error("the police link acted in a test")
	}
	c.Input = "nope"
	if _, err := h.eng.Do(c); err == nil {
		t.Error("test of an unknown input")
	}
}

// §3.4: a resolved incident is reviewed: cause, course, handling, problems
// and actions; it moves to reviewed, and one left unreviewed past
// review.due_after raises review_overdue.
func TestReview(t *testing.T) {
	h := newHall(t, "")
	c := staff(engine.VerbTrigger)
	c.Playbook = "illness"
	id := h.do(c)
	rv := staff(engine.VerbReview)
	rv.Incident = id
	rv.Review = &engine.Review{Cause: "heat", Course: "fainted at counter 2", Handling: "first aid, 120 called", Problems: "first-aid kit hard to reach",
		Actions: []engine.ReviewAction{{Owner: "Li Na", Due: "2026-12-15", Text: "move the kit to the front desk"}}}
	if _, err := h.eng.Do(rv); err == nil || !strings.Contains(err.Error(), "only a resolved incident") {
		t.Errorf("review of an open incident: %v", err)
	}
	res := staff(engine.VerbResolve)
	res.Incident = id
	h.do(res)
	bad := rv
	bad.Review = &engine.Review{Cause: "heat"}
	if _, err := h.eng.Do(bad); err == nil || !strings.Contains(err.Error(), "course, handling, problems") {
		t.Errorf("incomplete review: %v", err)
	}
	bad.Review = &engine.Review{Cause: "a", Course: "b", Handling: "c", Problems: "d", Actions: []engine.ReviewAction{{Owner: "x", Due: "next week", Text: "y"}}}
	if _, err := h.eng.Do(bad); err == nil || !strings.Contains(err.Error(), "not a date") {
		t.Errorf("bad due date: %v", err)
	}
	h.clk.Advance(8 * 24 * time.Hour) // past the default 7d
	cs := h.sink.ConditionsOf("review_overdue")
	if len(cs) != 1 || !cs[0].Active || cs[0].Count != 1 || !strings.Contains(cs[0].Detail, id) {
		t.Fatalf("review_overdue %+v", cs)
	}
	if n := h.eng.Unreviewed(); n != 1 {
		t.Errorf("unreviewed = %d", n)
	}
	h.do(rv)
	r := last(t, h.sink.ReportsOf("illness"))
	if r.Event != engine.EventReviewed || r.State != engine.StateReviewed || r.Review == nil || r.Timeline == nil ||
		r.Review.Cause != "heat" || r.Review.By != "Chen" || r.Review.Actions[0].Owner != "Li Na" || r.Review.Resolution != "resolved" {
		t.Errorf("reviewed report %s %s %+v", r.Event, r.State, r.Review)
	}
	if cs := h.sink.ConditionsOf("review_overdue"); len(cs) != 2 || cs[1].Active {
		t.Errorf("review_overdue not cleared: %+v", cs)
	}
	if _, err := h.eng.Do(rv); err == nil {
		t.Error("reviewed twice")
	}
	h.sink.Lock()
	n := len(h.sink.Reviews)
	h.sink.Unlock()
	if n != 1 {
		t.Errorf("%d reviews to the sink", n)
	}
}

// An incident an earlier run closed is reviewed from the journal's record.
func TestReviewOfAnEarlierRunsIncident(t *testing.T) {
	cfg := newHall(t, "").cfg
	sink := &enginetest.Sink{}
	clk := clock.NewFake(t0)
	e := engine.New(cfg, sink.Sinks(), engine.WithClock(clk), engine.WithClosedIncidents([]engine.ClosedIncident{
		{ID: "old-1", Playbook: "surge", Resolution: "resolved", ResolvedAt: t0.Add(-10 * 24 * time.Hour)},
		{ID: "old-2", Playbook: "robbery", Resolution: "false_alarm", ResolvedAt: t0.Add(-10 * 24 * time.Hour)},
		{ID: "old-3", Playbook: "fire", Resolution: "resolved", ResolvedAt: t0.Add(-10 * 24 * time.Hour), Reviewed: true},
	}))
	e.Start()
	defer e.Close()
	if cs := sink.ConditionsOf("review_overdue"); len(cs) != 1 || cs[0].Count != 1 || !strings.Contains(cs[0].Detail, "old-1") {
		t.Fatalf("review_overdue %+v", cs)
	}
	rv := staff(engine.VerbReview)
	rv.Incident = "old-1"
	rv.Review = &engine.Review{Cause: "pension day", Course: "queue of 40", Handling: "two more counters", Problems: "none"}
	if _, err := e.Do(rv); err != nil {
		t.Fatal(err)
	}
	sink.Lock()
	got := sink.Reviews
	sink.Unlock()
	if len(got) != 1 || got[0].Incident != "old-1" || got[0].Playbook != "surge" || len(got[0].Actions) != 0 {
		t.Errorf("reviews %+v", got)
	}
	if e.Unreviewed() != 0 {
		t.Error("still unreviewed")
	}
	rv.Incident = "old-3"
	if _, err := e.Do(rv); err == nil {
		t.Error("an incident reviewed twice across runs")
	}
}

// §4.2: the probe opens the system-failure incident with the failing check
// and its error, and resolves it on recovery with the outage's duration.
func TestProbeOpensAndResolvesSystemFailure(t *testing.T) {
	h := newHall(t, "")
	h.eng.ProbeFailed("http://core/health", "connection refused", 3, t0)
	h.eng.ProbeFailed("http://core/health", "connection refused", 4, t0.Add(time.Minute)) // still down: nothing new
	rs := h.sink.ReportsOf("system_failure")
	if len(rs) != 1 {
		t.Fatalf("%d reports", len(rs))
	}
	r := rs[0]
	if r.Origin != engine.OriginProbe || r.Source != "probe" || r.Drill ||
		r.Other != "business system check http://core/health failed 3 times in a row: connection refused" {
		t.Errorf("raised: origin %s source %s other %q", r.Origin, r.Source, r.Other)
	}
	// §4.2 3: only a count, never the phone numbers.
	st := staff(engine.VerbStep)
	st.Incident, st.Step, st.Records = r.Incident, "take_phone_numbers", []string{"138 0013 8000"}
	if _, err := h.eng.Do(st); err == nil || !strings.Contains(err.Error(), "never the phone numbers") {
		t.Errorf("phone number accepted: %v", err)
	}
	st.Records = []string{"4"}
	h.do(st)
	h.clk.Advance(25 * time.Minute)
	h.eng.ProbeRecovered("http://core/health", t0.Add(25*time.Minute))
	fin := last(t, h.sink.ReportsOf("system_failure"))
	if fin.Event != engine.EventResolved || fin.Timeline == nil || fin.Timeline.ResolvedBy != "probe" ||
		fin.Timeline.Reason != "business system check http://core/health succeeds again; outage 25m0s" ||
		fin.Control != "service restored after an outage of 25m0s" {
		t.Errorf("resolved: %s %+v control %q", fin.Event, fin.Timeline, fin.Control)
	}
	n := len(h.sink.ReportsOf("system_failure"))
	h.eng.ProbeRecovered("http://core/health", t0.Add(26*time.Minute))
	if n2 := len(h.sink.ReportsOf("system_failure")); n2 != n {
		t.Errorf("%d reports after a second recovery, want %d", n2, n)
	}
}

type cctvSink struct {
	*enginetest.Sink
	reqs []engine.CCTVRequest
}

func (s *cctvSink) PreserveCCTV(r engine.CCTVRequest) { s.reqs = append(s.reqs, r) }

// A preserve_cctv step requests the bookmark when done, and at close if
// nobody did it; the request is in the measures.
func TestPreserveCCTV(t *testing.T) {
	cfg, err := config.Parse("../../configs/engine-test.yaml", []byte(hallYAML+"cctv: {topic: cctv/bookmark, before: 5m, after: 30m}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := &cctvSink{Sink: &enginetest.Sink{}}
	clk := clock.NewFake(t0)
	sinks := s.Sinks()
	sinks.CCTV = s
	e := engine.New(cfg, sinks, engine.WithClock(clk))
	e.Start()
	defer e.Close()
	c := staff(engine.VerbTrigger)
	c.Playbook = "illness"
	id, _ := e.Do(c)
	clk.Advance(10 * time.Minute)
	st := staff(engine.VerbStep)
	st.Incident, st.Step = id, "preserve_cctv"
	if _, err := e.Do(st); err != nil {
		t.Fatal(err)
	}
	if len(s.reqs) != 1 || !s.reqs[0].From.Equal(t0.Add(-5*time.Minute)) || !s.reqs[0].Until.Equal(t0.Add(40*time.Minute)) || s.reqs[0].Step != "preserve_cctv" {
		t.Fatalf("requests %+v", s.reqs)
	}
	r := last(t, s.ReportsOf("illness"))
	if m := r.Measures[len(r.Measures)-1]; m.Text != "CCTV bookmark requested from 2026-12-01T08:55:00Z to 2026-12-01T09:40:00Z" || m.Section != "§4.7 4" {
		t.Errorf("measure %+v", m)
	}
	res := staff(engine.VerbResolve)
	res.Incident = id
	if _, err := e.Do(res); err != nil {
		t.Fatal(err)
	}
	if len(s.reqs) != 1 {
		t.Errorf("requested again at close: %+v", s.reqs)
	}
	// Not done: requested at close.
	id2, _ := e.Do(c)
	res.Incident = id2
	if _, err := e.Do(res); err != nil {
		t.Fatal(err)
	}
	if len(s.reqs) != 2 || s.reqs[1].Incident != id2 {
		t.Errorf("requests %+v", s.reqs)
	}
}

// §4.2, §4.5–§4.10: every manual plan is raised by trigger, has steps and
// an escalation ladder to defined roles; §4.9(b)2 needs two witnesses and
// §4.10 2 the agreed message.
func TestManualPlaybooks(t *testing.T) {
	h := newHall(t, "")
	for _, tc := range []struct{ playbook, section, variant string }{
		{"system_failure", "§4.2", ""}, {"besieged", "§4.5", ""}, {"disturbance", "§4.6", ""}, {"illness", "§4.7", ""},
		{"injury", "§4.8", ""}, {"lost_property", "§4.9(b)", "found"}, {"media", "§4.10", ""},
	} {
		pb := h.cfg.Playbook(tc.playbook)
		if pb == nil || !pb.Manual || len(pb.StepsFor(tc.variant)) == 0 || len(pb.Escalation) == 0 {
			t.Errorf("%s: missing, not manual, or without steps or escalation", tc.playbook)
			continue
		}
		for _, esc := range pb.Escalation {
			if h.cfg.Role(esc.Role) == nil {
				t.Errorf("%s: escalates to undefined role %s", tc.playbook, esc.Role)
			}
		}
		c := staff(engine.VerbTrigger)
		c.Playbook, c.Variant = tc.playbook, tc.variant
		id, err := h.eng.Do(c)
		if err != nil {
			t.Errorf("%s: %v", tc.playbook, err)
			continue
		}
		r := last(t, h.sink.ReportsOf(tc.playbook))
		if r.Incident != id || r.Section != tc.section || r.Origin != engine.OriginStaff || r.Source != "Chen" || len(r.Steps) != len(pb.StepsFor(tc.variant)) {
			t.Errorf("%s: report %s section %s origin %s steps %d", tc.playbook, r.Incident, r.Section, r.Origin, len(r.Steps))
		}
		h.clk.Advance(pb.Escalation[0].After.D())
		if e := last(t, h.sink.ReportsOf(tc.playbook)); e.Event != engine.EventEscalation || e.Escalation.Role != pb.Escalation[0].Role || e.Escalation.Contact == "" {
			t.Errorf("%s: no escalation to %s after %s: %+v", tc.playbook, pb.Escalation[0].Role, pb.Escalation[0].After.D(), e.Escalation)
		}
		switch tc.playbook {
		case "lost_property":
			st := staff(engine.VerbStep)
			st.Incident, st.Step, st.Records = id, "count_two_staff", []string{"Chen"}
			if _, err := h.eng.Do(st); err == nil {
				t.Error("§4.9(b)2 with one witness")
			}
			st.Records = []string{"Chen", "Liu"}
			if _, err := h.eng.Do(st); err != nil {
				t.Errorf("§4.9(b)2 with two witnesses: %v", err)
			}
		case "media":
			st := staff(engine.VerbStep)
			st.Incident, st.Step = id, "agreed_message"
			if _, err := h.eng.Do(st); err == nil {
				t.Error("§4.10 2 without the message")
			}
			st.Records = []string{"We are looking into it and will report back."}
			if _, err := h.eng.Do(st); err != nil {
				t.Errorf("§4.10 2: %v", err)
			}
		}
		res := staff(engine.VerbResolve)
		res.Incident = id
		if _, err := h.eng.Do(res); err != nil {
			t.Errorf("%s: resolve: %v", tc.playbook, err)
		}
	}
}

// An outage the probe opened before a restart is resolved by the first
// success after it.
func TestProbeResolvesARestoredOutage(t *testing.T) {
	cfg := newHall(t, "").cfg
	sink := &enginetest.Sink{}
	clk := clock.NewFake(t0)
	e := engine.New(cfg, sink.Sinks(), engine.WithClock(clk))
	down := t0.Add(-10 * time.Minute)
	if n := e.Restore([]engine.Report{{Incident: "old", Playbook: "system_failure", State: engine.StateActive, Origin: engine.OriginProbe,
		Source: "probe", OccurredAt: down, Version: 1, Seq: 1}}); n != 1 {
		t.Fatalf("restored %d", n)
	}
	e.Start()
	defer e.Close()
	e.ProbeRecovered("http://core/health", t0)
	r := last(t, sink.ReportsOf("system_failure"))
	if r.Event != engine.EventResolved || r.Control != "service restored after an outage of 10m0s" {
		t.Errorf("restored outage: %s %q", r.Event, r.Control)
	}
}
