package engine_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/daemon/engine/enginetest"
	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/clock"
)

const hallYAML = `
hall: {id: hall-001, name: 第一营业厅, location: 1 Main St.}
backend: sim
inputs:
  - {id: panic-1, kind: panic, variant: armed, line: 1, debounce: 20ms}
  - {id: panic-2, kind: panic, variant: explosive, line: 2}
  - {id: smoke-1, kind: smoke, line: 3}
  - {id: smoke-2, kind: smoke, line: 4}
  - {id: call-1, kind: callpoint, line: 5}
  - {id: q-in, kind: counter, direction: in, line: 6, debounce: 5ms}
  - {id: q-out, kind: counter, direction: out, line: 7, debounce: 5ms}
  - {id: stuck-1, kind: generic, line: 8, stuck_after: 1m}
  - {id: loop-1, kind: panic, variant: gas, contact: NC, line: 9, stuck_after: 10s}
outputs:
  - {id: siren, line: 20, fail_safe: inactive, audible: true}
  - {id: strobe, line: 21, fail_safe: inactive}
  - {id: power-cut, line: 22, fail_safe: inactive, live_only: true}
  - {id: police-link, line: 23, fail_safe: inactive, silent_ok: true}
smoke: {verify: persist, verify_window: 30s, confirm_window: 2m}
commands: {auth: none}
queue: {rate_window: 5m, surge_length: 30, clear_length: 20, surge_after: 2m, clear_after: 5m, daily_reset: "03:00"}
roles:
  - {id: supervisor, title: 专业主管, name: Li, contact: "+86 10 1111"}
  - {id: center_manager, title: 客服中心经理, name: Wang, contact: "+86 10 2222"}
  - {id: general_manager, title: 总经理, name: Zhao, contact: "+86 10 3333"}
`

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

type hall struct {
	t    *testing.T
	cfg  *config.Config
	clk  *clock.Fake
	sink *enginetest.Sink
	eng  *engine.Engine
	cond map[string]*devices.Conditioner
}

func newHall(t *testing.T, extra string) *hall {
	t.Helper()
	cfg, err := config.Parse(filepath.Join("..", "..", "configs", "engine-test.yaml"), []byte(hallYAML+extra))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	h := &hall{t: t, cfg: cfg, clk: clock.NewFake(t0), sink: &enginetest.Sink{}, cond: map[string]*devices.Conditioner{}}
	n := 0
	h.eng = engine.New(cfg, h.sink.Sinks(), engine.WithClock(h.clk), engine.WithIDs(func(time.Time) string {
		n++
		return "inc-" + string(rune('0'+n))
	}))
	for _, in := range cfg.Inputs {
		h.cond[in.ID] = devices.NewConditioner(devices.ConditionSpec{
			ID: in.ID, Contact: devices.Contact(in.Contact), Debounce: in.Debounce.D(), StuckAfter: in.StuckAfter.D(),
		}, h.clk, handler{h.eng})
		idle := devices.Low
		if in.Contact == "NC" {
			idle = devices.High
		}
		h.cond[in.ID].Start(idle, t0)
	}
	h.eng.Start()
	return h
}

type handler struct{ e *engine.Engine }

func (h handler) Signal(s devices.Signal) { h.e.Signal(s) }
func (h handler) Fault(f devices.Fault)   { h.e.Fault(f) }

// edge feeds a raw logical level to an input's conditioner.
func (h *hall) edge(id string, l devices.Level) {
	h.cond[id].Edge(devices.Event{Line: id, Level: l, Time: h.clk.Now()})
}

// do carries out c, which must succeed, and returns its incident.
func (h *hall) do(c engine.Command) string {
	h.t.Helper()
	id, err := h.eng.Do(c)
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

func (h *hall) press(id string)   { h.edge(id, devices.High) }
func (h *hall) release(id string) { h.edge(id, devices.Low) }
func (h *hall) pulse(id string) {
	h.press(id)
	h.clk.Advance(10 * time.Millisecond)
	h.release(id)
	h.clk.Advance(10 * time.Millisecond)
}

func TestPanicChatterGivesOneIncidentAndOneReport(t *testing.T) {
	h := newHall(t, "")
	// A 1 kHz bounce for 200 ms: an edge every 0.5 ms.
	level := devices.Low
	for i := 0; i < 400; i++ {
		level = !level
		h.edge("panic-1", level)
		h.clk.Advance(500 * time.Microsecond)
	}
	h.edge("panic-1", devices.High) // settles pressed
	h.clk.Advance(time.Second)

	reps := h.sink.ReportsOf("robbery")
	if len(reps) != 1 {
		t.Fatalf("robbery reports = %d, want 1: %+v", len(reps), reps)
	}
	r := reps[0]
	if r.Variant != "armed" || r.Event != engine.EventRaised || r.Section != "§4.3(a)" || !r.Silent {
		t.Errorf("report = variant %q event %q section %q silent %v", r.Variant, r.Event, r.Section, r.Silent)
	}
	if !r.OccurredAt.Equal(t0) || !r.Trigger.Equal(t0) {
		t.Errorf("occurred %v trigger %v, want the first edge %v (no added debounce delay)", r.OccurredAt, r.Trigger, t0)
	}
	if r.Hall.Name != "第一营业厅" || r.Impact != engine.Unknown || r.Control != engine.Unknown {
		t.Errorf("§3.3 fields: hall %+v impact %q control %q", r.Hall, r.Impact, r.Control)
	}
	if got := len(h.eng.Incidents()); got != 1 {
		t.Fatalf("incidents = %d, want 1", got)
	}
	// A second button during the same robbery joins it: one incident, and
	// an update report that carries the button (TestNewButtonJoiningAn...).
	h.press("panic-2")
	if got := h.sink.ReportsOf("robbery"); len(got) != 2 || got[1].Event != engine.EventUpdate || got[1].Incident != r.Incident {
		t.Errorf("after second button: reports = %+v, want the raise and one update", got)
	}
	inc := h.eng.Incidents()[0]
	if inc.Presses < 2 || len(inc.Inputs) != 2 {
		t.Errorf("incident presses %d inputs %v, want both buttons", inc.Presses, inc.Inputs)
	}
}

func TestRobberyIsSilentAndLatches(t *testing.T) {
	h := newHall(t, "")
	h.pulse("panic-1")
	if h.sink.Level("siren") || len(h.sink.DrivesOf("siren")) != 0 || len(h.sink.DrivesOf("strobe")) != 0 {
		t.Errorf("siren/strobe driven during robbery: %+v", h.sink.Drives)
	}
	if !h.sink.Level("police-link") {
		t.Errorf("police-link (silent_ok) not driven")
	}
	id := h.eng.Incidents()[0].ID
	for _, c := range []engine.Command{
		{Verb: engine.VerbResolve, Incident: id, By: "teller", Origin: engine.OriginStaff},
		{Verb: engine.VerbResolve, Incident: id, By: "someone", Origin: engine.OriginCenter, Authenticated: false},
	} {
		if _, err := h.eng.Do(c); err == nil || !strings.Contains(err.Error(), "authenticated center") {
			t.Errorf("%s/%v resolve: err = %v, want refusal", c.Origin, c.Authenticated, err)
		}
	}
	if _, err := h.eng.Do(engine.Command{Verb: engine.VerbResolve, Incident: id, By: "center-op-7", Origin: engine.OriginCenter, Authenticated: true}); err != nil {
		t.Fatalf("center resolve: %v", err)
	}
	inc, _ := h.eng.Incident(id)
	if inc.State != engine.StateResolved || h.sink.Level("police-link") {
		t.Errorf("after resolve: state %s police-link %v", inc.State, h.sink.Level("police-link"))
	}
}

func TestSmokeVerification(t *testing.T) {
	t.Run("unverified smoke is a pre-alarm, not fire", func(t *testing.T) {
		h := newHall(t, "")
		h.press("smoke-1")
		h.clk.Advance(10 * time.Second)
		h.release("smoke-1")
		h.clk.Advance(time.Minute)
		if n := len(h.sink.ReportsOf("fire")); n != 0 {
			t.Fatalf("fire reports = %d, want 0", n)
		}
		pa := h.sink.ConditionsOf("pre_alarm")
		if len(pa) != 2 || !pa[0].Active || pa[1].Active || pa[0].Class != engine.ClassSupervisory {
			t.Errorf("pre_alarm conditions = %+v, want raised then cleared", pa)
		}
		found := false
		for _, st := range h.sink.Inputs {
			found = found || (st.ID == "smoke-1" && st.State == "pre-alarm")
		}
		if !found {
			t.Errorf("smoke-1 never published as pre-alarm")
		}
		if h.sink.Level("siren") {
			t.Errorf("siren on for an unverified pre-alarm")
		}
	})
	t.Run("smoke active for the verify window is fire", func(t *testing.T) {
		h := newHall(t, "")
		h.press("smoke-1")
		h.clk.Advance(29 * time.Second)
		if n := len(h.sink.ReportsOf("fire")); n != 0 {
			t.Fatalf("fire before the window: %d reports", n)
		}
		h.clk.Advance(2 * time.Second)
		reps := h.sink.ReportsOf("fire")
		if len(reps) != 1 || !reps[0].OccurredAt.Equal(t0) {
			t.Fatalf("fire reports = %+v, want one occurring at the first smoke", reps)
		}
		if !h.sink.Level("siren") || !h.sink.Level("strobe") {
			t.Errorf("fire did not sound: %+v", h.sink.Drives)
		}
	})
	t.Run("two detectors give fire at once", func(t *testing.T) {
		h := newHall(t, "")
		h.press("smoke-1")
		h.clk.Advance(3 * time.Second)
		h.press("smoke-2")
		reps := h.sink.ReportsOf("fire")
		if len(reps) != 1 || !strings.Contains(reps[0].Other, "two detectors") {
			t.Fatalf("fire reports = %+v", reps)
		}
		if len(reps[0].Inputs) != 2 {
			t.Errorf("inputs = %v, want both detectors", reps[0].Inputs)
		}
	})
	t.Run("retrigger mode: re-trigger after reset is fire", func(t *testing.T) {
		h := newHall(t, "")
		h.cfg.Smoke.Verify = config.VerifyRetrigger
		h.press("smoke-1")
		h.clk.Advance(5 * time.Second)
		h.release("smoke-1")
		h.clk.Advance(20 * time.Second)
		if n := len(h.sink.ReportsOf("fire")); n != 0 {
			t.Fatalf("fire after one trigger: %d", n)
		}
		h.press("smoke-1")
		if n := len(h.sink.ReportsOf("fire")); n != 1 {
			t.Fatalf("fire after re-trigger: %d reports, want 1", n)
		}
	})
	t.Run("call point is fire at once", func(t *testing.T) {
		h := newHall(t, "")
		h.press("call-1")
		if n := len(h.sink.ReportsOf("fire")); n != 1 {
			t.Fatalf("fire reports = %d", n)
		}
	})
}

func TestFireOutputsAndPowerCutDelay(t *testing.T) {
	h := newHall(t, "")
	h.press("call-1")
	if !h.sink.Level("siren") || h.sink.Level("power-cut") || h.sink.Level("police-link") {
		t.Fatalf("at fire: %+v", h.sink.Drives)
	}
	h.clk.Advance(59 * time.Second)
	if h.sink.Level("power-cut") {
		t.Fatalf("power cut before its delay")
	}
	h.clk.Advance(2 * time.Second)
	if !h.sink.Level("power-cut") {
		t.Fatalf("power cut not driven after 60s (§4.4 3)")
	}
	last := h.sink.ReportsOf("fire")
	found := false
	for _, m := range last[len(last)-1].Measures {
		found = found || (m.Text == "power-cut on" && m.Section == "§4.4 3")
	}
	if !found {
		t.Errorf("measures = %+v, want power-cut on (§4.4 3) reported", last[len(last)-1].Measures)
	}
	id := h.eng.Incidents()[0].ID
	h.do(engine.Command{Verb: engine.VerbResolve, Incident: id, By: "center", Origin: engine.OriginCenter, Authenticated: true})
	for _, o := range []string{"siren", "strobe", "power-cut"} {
		if h.sink.Level(o) {
			t.Errorf("%s still on after resolve", o)
		}
	}
}

func TestSurgeHysteresis(t *testing.T) {
	h := newHall(t, "")
	arrive := func(n int) {
		for i := 0; i < n; i++ {
			h.pulse("q-in")
		}
	}
	leave := func(n int) {
		for i := 0; i < n; i++ {
			h.pulse("q-out")
		}
	}
	// Hover around the upper threshold: above for less than surge_after.
	arrive(30)
	h.clk.Advance(time.Minute)
	leave(2) // 28
	h.clk.Advance(5 * time.Minute)
	arrive(2) // 30 again
	h.clk.Advance(90 * time.Second)
	leave(1)
	if n := len(h.sink.ReportsOf("surge")); n != 0 {
		t.Fatalf("surge raised by brief crossings: %d reports", n)
	}
	arrive(5) // 34, and stay
	h.clk.Advance(2*time.Minute + time.Second)
	reps := h.sink.ReportsOf("surge")
	if len(reps) != 1 || reps[0].Event != engine.EventRaised {
		t.Fatalf("surge start: %+v", reps)
	}
	// Drop between the thresholds: no end.
	leave(10) // 24
	h.clk.Advance(10 * time.Minute)
	arrive(8) // 32: still in surge, no new incident
	h.clk.Advance(10 * time.Minute)
	// Below the clear threshold, briefly, then for good.
	leave(13) // 19
	h.clk.Advance(4 * time.Minute)
	arrive(2) // 21
	h.clk.Advance(10 * time.Minute)
	leave(5) // 16
	h.clk.Advance(5*time.Minute + time.Second)
	reps = h.sink.ReportsOf("surge")
	var starts, ends int
	for _, r := range reps {
		switch {
		case r.Event == engine.EventRaised:
			starts++
		case r.Event == engine.EventUpdate && r.Trend == "easing":
			ends++
		}
	}
	if starts != 1 || ends != 1 {
		t.Fatalf("surge starts %d ends %d, want 1 and 1: %+v", starts, ends, reps)
	}
	q := h.eng.Queue()
	if q.Length != 16 || q.Surge {
		t.Errorf("queue = %+v", q)
	}
}

func TestQueueClampsAtZeroAndResetsDaily(t *testing.T) {
	h := newHall(t, "")
	h.pulse("q-out")
	if q := h.eng.Queue(); q.Length != 0 {
		t.Fatalf("length %d after a departure from empty", q.Length)
	}
	for i := 0; i < 5; i++ {
		h.pulse("q-in")
	}
	h.clk.Set(time.Date(2026, 12, 2, 3, 0, 1, 0, time.UTC))
	if q := h.eng.Queue(); q.Length != 0 || q.Arrivals != 5 {
		t.Fatalf("after the 03:00 reset: %+v", q)
	}
}

func TestEscalationFiresAtTimeoutNotBefore(t *testing.T) {
	h := newHall(t, "")
	h.press("call-1") // fire: supervisor 1m, center_manager 3m, general_manager 5m
	esc := func() []engine.Report {
		var out []engine.Report
		for _, r := range h.sink.ReportsOf("fire") {
			if r.Event == engine.EventEscalation {
				out = append(out, r)
			}
		}
		return out
	}
	h.clk.Advance(59*time.Second + 999*time.Millisecond)
	if n := len(esc()); n != 0 {
		t.Fatalf("escalated before the timeout: %d", n)
	}
	h.clk.Advance(time.Millisecond)
	e := esc()
	if len(e) != 1 || e[0].Escalation.Role != "supervisor" || e[0].Escalation.Contact != "+86 10 1111" {
		t.Fatalf("escalation at 1m: %+v", e)
	}
	h.clk.Advance(2 * time.Minute)
	if e = esc(); len(e) != 2 || e[1].Escalation.Role != "center_manager" || e[1].Escalation.Name != "Wang" {
		t.Fatalf("escalation at 3m: %+v", e)
	}
	id := h.eng.Incidents()[0].ID
	h.do(engine.Command{Verb: engine.VerbAck, Incident: id, By: "center-op", Origin: engine.OriginCenter})
	h.clk.Advance(10 * time.Minute)
	if n := len(esc()); n != 2 {
		t.Errorf("escalated after acknowledgement: %d", n)
	}
}

func TestFaults(t *testing.T) {
	t.Run("stuck button raises trouble", func(t *testing.T) {
		h := newHall(t, "")
		h.press("stuck-1")
		h.clk.Advance(59 * time.Second)
		if n := len(h.sink.ConditionsOf("stuck")); n != 0 {
			t.Fatalf("stuck before stuck_after")
		}
		h.clk.Advance(2 * time.Second)
		c := h.sink.ConditionsOf("stuck")
		if len(c) != 1 || c[0].Class != engine.ClassTrouble || !c[0].Active || c[0].Input != "stuck-1" {
			t.Fatalf("stuck conditions = %+v", c)
		}
		h.release("stuck-1")
		if c = h.sink.ConditionsOf("stuck"); len(c) != 2 || c[1].Active {
			t.Fatalf("stuck not cleared on release: %+v", c)
		}
	})
	t.Run("NC loop cut raises tamper", func(t *testing.T) {
		h := newHall(t, "")
		h.release("loop-1") // NC: the loop opens (logical low)
		h.clk.Advance(11 * time.Second)
		c := h.sink.ConditionsOf("loop_open")
		if len(c) != 1 || c[0].Class != engine.ClassTamper || !c[0].Active {
			t.Fatalf("loop_open conditions = %+v", c)
		}
		// Alarm first: an open panic loop is also a robbery (a cut wire and a
		// press look the same without end-of-line resistors).
		if n := len(h.sink.ReportsOf("robbery")); n != 1 {
			t.Errorf("robbery reports = %d, want 1", n)
		}
		var st engine.InputState
		for _, s := range h.sink.Inputs {
			if s.ID == "loop-1" {
				st = s
			}
		}
		if len(st.Faults) != 1 || st.Faults[0] != "loop_open" {
			t.Errorf("input state = %+v", st)
		}
	})
	t.Run("lost edges are counted", func(t *testing.T) {
		h := newHall(t, "")
		h.cond["stuck-1"].Edge(devices.Event{Line: "stuck-1", Level: devices.High, Time: h.clk.Now(), Seq: 9, Lost: 7})
		c := h.sink.ConditionsOf("lost_edges")
		if len(c) != 1 || c[0].Count != 7 {
			t.Fatalf("lost_edges = %+v", c)
		}
	})
}

func TestCommands(t *testing.T) {
	h := newHall(t, "")
	id := h.do(engine.Command{Verb: engine.VerbTrigger, Playbook: "illness", By: "Chen", Origin: engine.OriginStaff})
	inc, _ := h.eng.Incident(id)
	step := inc.Steps[0].ID
	cases := []struct {
		name string
		cmd  engine.Command
		want string // error substring, "" for ok
	}{
		{"no actor", engine.Command{Verb: engine.VerbAck, Incident: id, Origin: engine.OriginStaff}, "by"},
		{"unknown incident", engine.Command{Verb: engine.VerbAck, Incident: "nope", By: "x", Origin: engine.OriginStaff}, "unknown incident"},
		{"robbery not manual", engine.Command{Verb: engine.VerbTrigger, Playbook: "robbery", By: "x", Origin: engine.OriginStaff}, "not raised by hand"},
		{"unknown step", engine.Command{Verb: engine.VerbStep, Incident: id, Step: "fly", By: "x", Origin: engine.OriginStaff}, "no step"},
		{"step", engine.Command{Verb: engine.VerbStep, Incident: id, Step: step, By: "Chen", Origin: engine.OriginStaff}, ""},
		{"step twice", engine.Command{Verb: engine.VerbStep, Incident: id, Step: step, By: "Chen", Origin: engine.OriginStaff}, "already done"},
		{"ack", engine.Command{Verb: engine.VerbAck, Incident: id, By: "Chen", Origin: engine.OriginStaff}, ""},
		{"ack twice", engine.Command{Verb: engine.VerbAck, Incident: id, By: "Chen", Origin: engine.OriginStaff}, "acknowledged"},
		{"false alarm without reason", engine.Command{Verb: engine.VerbFalseAlarm, Incident: id, By: "Chen", Origin: engine.OriginStaff}, "reason"},
		{"resolve by hall", engine.Command{Verb: engine.VerbResolve, Incident: id, By: "Chen", Origin: engine.OriginStaff}, ""},
	}
	for _, c := range cases {
		_, err := h.eng.Do(c.cmd)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
	reps := h.sink.ReportsOf("illness")
	events := []string{}
	for _, r := range reps {
		events = append(events, r.Event.String())
	}
	if got := strings.Join(events, ","); got != "raised,step,acknowledged,resolved" {
		t.Errorf("report events = %s", got)
	}
	for i, r := range reps {
		if r.Version != i+1 || r.ID != id+".v"+string(rune('1'+i)) {
			t.Errorf("report %d: id %s version %d", i, r.ID, r.Version)
		}
	}
	if s := reps[1].Steps[0]; !s.Done || s.By != "Chen" {
		t.Errorf("step in report = %+v", s)
	}
}
