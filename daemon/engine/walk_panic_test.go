package engine_test

import (
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/engine"
)

// A walk test proves each input with one press and raises nothing; a
// panic button pressed again during the walk test raises the robbery.
func TestWalkTestKeepsPanicButtonsLiveAfterTheirProof(t *testing.T) {
	h := newHall(t, "")
	if _, err := h.eng.Do(engine.Command{Verb: engine.VerbDrill, Action: "walk_start", By: "installer", Origin: engine.OriginStaff}); err != nil {
		t.Fatal(err)
	}
	h.pulse("panic-1")
	h.pulse("call-1")
	h.clk.Advance(time.Second)
	if n := len(h.sink.Reports); n != 0 {
		t.Fatalf("walk-test proofs raised %d reports, want none", n)
	}
	h.press("panic-1") // pressed again: real
	reps := h.sink.ReportsOf("robbery")
	if len(reps) != 1 || reps[0].Drill {
		t.Fatalf("second press during a walk test: robbery reports %+v, want one real robbery", reps)
	}
}

// A robbery during a drill changes nothing in the hall: the drill goes on
// (a fire drill's siren keeps sounding) and its record notes the robbery.
// Any other real alarm aborts the drill (§1.3).
func TestSilentAlarmDoesNotAbortADrill(t *testing.T) {
	h := newHall(t, "")
	id, err := h.eng.Do(engine.Command{Verb: engine.VerbDrill, Action: "start", Playbook: "fire", Participants: []string{"Chen"}, By: "Chen", Origin: engine.OriginStaff})
	if err != nil {
		t.Fatal(err)
	}
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
