package engine_test

import (
	"strings"
	"testing"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/devices"
)

// inferredNote returns the measure of r that says the activation was
// inferred from lost edges, or nil.
func inferredNote(r engine.Report) *engine.Measure {
	for i, m := range r.Measures {
		if strings.Contains(m.Text, "inferred from lost edges") {
			return &r.Measures[i]
		}
	}
	return nil
}

// A panic or call-point activation that only lost edges show raises the
// playbook (§4.3, §4.4), and its first report says it was inferred.
func TestLostActivationRaisesPlaybookWithInferredMeasure(t *testing.T) {
	for _, tc := range []struct{ input, playbook string }{{"panic-1", "robbery"}, {"call-1", "fire"}} {
		h := newHall(t, "")
		h.eng.Signal(devices.Signal{Input: tc.input, Active: true, Time: h.clk.Now(), Seq: 2, Inferred: true, Lost: 1})
		h.eng.Signal(devices.Signal{Input: tc.input, Active: false, Time: h.clk.Now(), Seq: 2})
		reps := h.sink.ReportsOf(tc.playbook)
		if len(reps) != 1 || reps[0].Event != engine.EventRaised {
			t.Fatalf("%s: %s reports %+v, want one raised", tc.input, tc.playbook, reps)
		}
		m := inferredNote(reps[0])
		if m == nil {
			t.Fatalf("%s: raised report's measures %+v say nothing of lost edges", tc.input, reps[0].Measures)
		}
		if !strings.Contains(m.Text, tc.input) {
			t.Errorf("%s: measure %q does not name the input", tc.input, m.Text)
		}
	}
}

// A seen press is not flagged as inferred.
func TestSeenPressHasNoInferredMeasure(t *testing.T) {
	h := newHall(t, "")
	h.press("panic-1")
	reps := h.sink.ReportsOf("robbery")
	if len(reps) != 1 {
		t.Fatalf("robbery reports %d, want 1", len(reps))
	}
	if m := inferredNote(reps[0]); m != nil {
		t.Errorf("a seen press reported as inferred: %+v", m)
	}
}

// lost_edges is raised with its count and cleared when conditioning says
// the line behaves again, instead of staying active (and retained) forever.
func TestLostEdgesConditionClears(t *testing.T) {
	h := newHall(t, "")
	h.eng.Fault(devices.Fault{Input: "q-in", Kind: devices.FaultLostEdges, Active: true, Time: h.clk.Now(), Count: 3})
	h.eng.Fault(devices.Fault{Input: "q-in", Kind: devices.FaultLostEdges, Active: false, Time: h.clk.Now()})
	cs := h.sink.ConditionsOf("lost_edges")
	if len(cs) != 2 || !cs[0].Active || cs[0].Count != 3 || cs[1].Active {
		t.Fatalf("lost_edges conditions %+v, want raised (count 3) then cleared", cs)
	}
	h.sink.Lock()
	last := h.sink.Inputs[len(h.sink.Inputs)-1]
	h.sink.Unlock()
	if last.ID != "q-in" || last.LostEdges != 3 {
		t.Errorf("input state %+v, want q-in with 3 lost edges counted once", last)
	}
}
