package engine_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/engine"
)

// Every new input, or new variant, joining an open robbery sends an update
// report that carries it, also once the center has acknowledged it
// (§3.2: reported truthfully; the vault foot rail is §4.3(b)).
func TestNewButtonJoiningAnAcknowledgedRobberyIsReported(t *testing.T) {
	h := newHall(t, "")
	h.press("panic-1") // armed, §4.3(a)
	id := h.sink.ReportsOf("robbery")[0].Incident
	ack := engine.Command{Verb: engine.VerbAck, Incident: id, By: "op-7", Origin: engine.OriginCenter, Authenticated: true}
	h.do(ack)
	h.clk.Advance(time.Minute)
	at := h.clk.Now()
	h.press("panic-2") // explosive, §4.3(b): the vault foot rail
	r := last(t, h.sink.ReportsOf("robbery"))
	if r.Event != engine.EventUpdate || r.Incident != id || r.State != engine.StateAcknowledged {
		t.Fatalf("after a second button: last report %s %s %s, want an update of %s", r.Event, r.Incident, r.State, id)
	}
	if !slices.Equal(r.Inputs, []string{"panic-1", "panic-2"}) || r.Presses != 2 {
		t.Errorf("update inputs %v presses %d", r.Inputs, r.Presses)
	}
	if !slices.Equal(r.Variants, []string{"armed", "explosive"}) {
		t.Errorf("update variants %v, want armed and explosive", r.Variants)
	}
	if !r.Trigger.Equal(at) {
		t.Errorf("update trigger %v, want the press %v", r.Trigger, at)
	}
	m := r.Measures[len(r.Measures)-1]
	if !strings.Contains(m.Text, "panic-2") || !strings.Contains(m.Text, "explosive") || m.Section != "§4.3(b)" {
		t.Errorf("measure %+v does not carry panic-2, explosive, §4.3(b)", m)
	}
	has := false
	for _, s := range r.Steps {
		has = has || s.Section == "§4.3(b)2"
	}
	if !has {
		t.Errorf("the §4.3(b) steps did not join: %+v", r.Steps)
	}
	// The same button again adds nothing new: counted, no report.
	n := len(h.sink.ReportsOf("robbery"))
	h.release("panic-2")
	h.clk.Advance(time.Second)
	h.press("panic-2")
	if got := len(h.sink.ReportsOf("robbery")); got != n {
		t.Errorf("the same button again made %d reports", got-n)
	}
}

// A new detector or call point joining an open fire is reported.
func TestNewInputJoiningAFireIsReported(t *testing.T) {
	h := newHall(t, "")
	h.press("call-1")
	h.clk.Advance(10 * time.Second)
	h.press("smoke-2")
	r := last(t, h.sink.ReportsOf("fire"))
	if r.Event != engine.EventUpdate || !slices.Equal(r.Inputs, []string{"call-1", "smoke-2"}) {
		t.Fatalf("after smoke-2: last fire report %s inputs %v, want an update with both", r.Event, r.Inputs)
	}
}
