package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/daemon/engine/enginetest"
	"github.com/hallguard/hallguard/devices/clock"
)

// restoreHall is an engine on the test hall, not started, with its clock at
// now, for Restore.
func restoreHall(t *testing.T, now time.Time) (*engine.Engine, *enginetest.Sink, *clock.Fake) {
	t.Helper()
	cfg := newHall(t, "").cfg
	sink := &enginetest.Sink{}
	clk := clock.NewFake(now)
	e := engine.New(cfg, sink.Sinks(), engine.WithClock(clk))
	t.Cleanup(e.Close)
	return e, sink, clk
}

// fireReport is the latest report of a fire raised at occurred, made at
// created, with the outputs and escalation measures given.
func fireReport(occurred, created time.Time, measures ...engine.Measure) engine.Report {
	return engine.Report{ID: "fire-1.v1", Incident: "fire-1", Seq: 7, Version: 1, Event: engine.EventRaised,
		Playbook: "fire", Origin: engine.OriginButton, Source: "call-1", State: engine.StateActive,
		OccurredAt: occurred, Created: created, Inputs: []string{"call-1"}, Measures: measures}
}

func outputOn(at time.Time, id string) engine.Measure {
	return engine.Measure{At: at, Kind: "output", Text: id + " on", By: "hallguard"}
}

func escalations(rs []engine.Report) []int {
	var levels []int
	for _, r := range rs {
		if r.Event == engine.EventEscalation && r.Escalation != nil {
			levels = append(levels, r.Escalation.Level)
		}
	}
	return levels
}

// TestRestoreDoesWhatFellDueWhileDown: a fire raised 10 minutes before the
// restart, whose power cut (60 s delay, §4.4 3) and escalations (1, 3 and
// 5 minutes, §2) fell due while the daemon was down: at the restart the
// power is cut at once, with its measure, and every escalation not yet
// recorded in the measures is sent at once, in order.
func TestRestoreDoesWhatFellDueWhileDown(t *testing.T) {
	occurred := t0.Add(-10 * time.Minute)
	e, sink, _ := restoreHall(t, t0)
	r := fireReport(occurred, occurred.Add(time.Second),
		outputOn(occurred, "siren"), outputOn(occurred, "strobe"),
		engine.Measure{At: occurred.Add(time.Minute), Kind: "escalation", Section: "§2", Text: "not acknowledged within 1m0s: escalated to supervisor", By: "hallguard"})
	if n := e.Restore([]engine.Report{r}); n != 1 {
		t.Fatalf("restored %d, want 1", n)
	}
	if !sink.Level("power-cut") {
		t.Errorf("the power cut that fell due while down is not driven at the restart")
	}
	reps := sink.ReportsOf("fire")
	if len(reps) == 0 {
		t.Fatal("no report at the restart")
	}
	found := false
	for _, m := range last(t, reps).Measures {
		if m.Kind == "output" && m.Text == "power-cut on" {
			found = true
		}
	}
	if !found {
		t.Errorf("the restored report does not record the power cut among its measures: %+v", last(t, reps).Measures)
	}
	if got := escalations(reps); len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Errorf("escalations sent at the restart: levels %v, want [2 3] (level 1 was recorded before the stop)", got)
	}
}

// TestRestoreWithClockBehindCountsFromRestart: the box boots with its wall
// clock a day behind. What was left of each delay when the daemon stopped
// is counted from the restart (by the clock's timers, which are
// monotonic), never stretched by the wall clock's error: the first
// escalation (1 m after the fire) and the power cut (60 s) come within a
// minute of the restart, not a day later.
func TestRestoreWithClockBehindCountsFromRestart(t *testing.T) {
	occurred := t0
	created := occurred.Add(5 * time.Second) // the last the journal knew of it
	e, sink, clk := restoreHall(t, occurred.Add(-24*time.Hour))
	r := fireReport(occurred, created, outputOn(occurred, "siren"), outputOn(occurred, "strobe"), outputOn(occurred, "door-release"))
	if n := e.Restore([]engine.Report{r}); n != 1 {
		t.Fatalf("restored %d, want 1", n)
	}
	if sink.Level("power-cut") || len(escalations(sink.ReportsOf("fire"))) != 0 {
		t.Fatalf("acted at once, though at most %s was known to have passed", created.Sub(occurred))
	}
	clk.Advance(55 * time.Second)
	if !sink.Level("power-cut") {
		t.Errorf("power cut not driven 55 s after the restart (60 s delay, 5 s known to have passed)")
	}
	if got := escalations(sink.ReportsOf("fire")); len(got) != 1 || got[0] != 1 {
		t.Errorf("escalations 55 s after the restart: %v, want [1]", got)
	}
}

// TestRestoreSaysWhatItDid: the restored report's note names what was done
// at once because it fell due while the daemon was down.
func TestRestoreSaysWhatItDid(t *testing.T) {
	occurred := t0.Add(-2 * time.Minute)
	e, sink, _ := restoreHall(t, t0)
	e.Restore([]engine.Report{fireReport(occurred, occurred, outputOn(occurred, "siren"))})
	var notes []string
	for _, r := range sink.ReportsOf("fire") {
		for _, m := range r.Measures {
			if m.Kind == "note" {
				notes = append(notes, m.Text)
			}
		}
	}
	if len(notes) == 0 || !strings.Contains(strings.Join(notes, "\n"), "fell due while hallguard was down") {
		t.Errorf("notes %q: none says what fell due while down", notes)
	}
}
