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
