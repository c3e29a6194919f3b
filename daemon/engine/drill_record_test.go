package engine_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/engine"
)

// §1.3: the drill record tells the truth. A real robbery during a drill
// does not end the drill (§4.3: nothing changes in the hall), but the
// drill's record states that a real incident occurred, with its id.
func TestDrillRecordStatesTheRealIncidentDuringIt(t *testing.T) {
	h := newHall(t, "")
	id := startDrill(t, h, "fire")
	h.clk.Advance(time.Minute)
	h.press("panic-1")
	rob := h.sink.ReportsOf("robbery")
	if len(rob) != 1 || rob[0].Drill {
		t.Fatalf("robbery reports %+v", rob)
	}
	h.clk.Advance(time.Minute)
	stop := staff(engine.VerbDrill)
	stop.Action = engine.DrillStop
	h.do(stop)
	ds := h.sink.Drills()
	if len(ds) != 1 || ds[0].ID != id {
		t.Fatalf("drill records %+v", ds)
	}
	d := ds[0]
	if !slices.Equal(d.RealIncidents, []string{rob[0].Incident}) {
		t.Errorf("real_incidents %v, want [%s]", d.RealIncidents, rob[0].Incident)
	}
	said := false
	for _, c := range d.Comments {
		said = said || strings.Contains(c.Text, rob[0].Incident)
	}
	if !said {
		t.Errorf("comments %+v do not name the real incident %s", d.Comments, rob[0].Incident)
	}
	// An evaluation added later keeps the statement.
	ev := staff(engine.VerbDrill)
	ev.Action, ev.Drill, ev.Reason = engine.DrillEvaluate, id, "good"
	h.do(ev)
	ds = h.sink.Drills()
	if d := ds[len(ds)-1]; len(d.Comments) != 2 || !slices.Equal(d.RealIncidents, []string{rob[0].Incident}) {
		t.Errorf("evaluated record %+v", d)
	}
}

// A robbery during a drill changes nothing in the hall: the drill goes on
// (a fire drill's siren keeps sounding). Any other real alarm aborts the
// drill (§1.3).
func TestSilentAlarmDoesNotAbortADrill(t *testing.T) {
	h := newHall(t, "")
	id := h.do(engine.Command{Verb: engine.VerbDrill, Action: "start", Playbook: "fire", Participants: []string{"Chen"}, By: "Chen", Origin: engine.OriginStaff})
	if !h.sink.Level("siren") {
		t.Fatalf("fire drill without its siren")
	}
	h.press("panic-1")
	if len(h.sink.ReportsOf("robbery")) != 1 {
		t.Fatalf("robbery not reported during a drill")
	}
	inc, _ := h.eng.Incident(id)
	if inc.State != engine.StateActive || !h.sink.Level("siren") {
		t.Fatalf("a silent robbery changed the drill: state %s, siren %v", inc.State, h.sink.Level("siren"))
	}
	h.press("call-1") // a real fire aborts it
	if inc, _ = h.eng.Incident(id); inc.State == engine.StateActive {
		t.Fatalf("a real fire did not abort the drill")
	}
}
