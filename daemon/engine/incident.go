package engine

import (
	"fmt"
	"slices"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/devices/clock"
)

// Incident is one activation of a playbook. Its JSON (/api/incidents)
// uses the lower-case names of the report (Report, mqtt.ReportPayload).
type Incident struct {
	ID       string `json:"id"`
	Playbook string `json:"playbook"`
	Variant  string `json:"variant"`
	Origin   Origin `json:"origin"`
	Source   string `json:"source"`
	Drill    bool   `json:"drill"`
	// Test marks the incident of hold-up presses during a walk test: reported
	// to the center with test: true, no output, no escalation.
	Test  bool  `json:"test"`
	State State `json:"state"`

	OccurredAt time.Time `json:"occurred_at"` // the triggering event's timestamp
	DetectedAt time.Time `json:"detected_at"` // when the engine raised it
	Presses    int       `json:"presses"`
	Inputs     []string  `json:"inputs"`
	// Variants are the variants involved, its own first (nil for a
	// playbook without variants).
	Variants []string    `json:"variants"`
	Steps    []StepState `json:"steps"`
	Measures []Measure   `json:"measures"`
	Version  int         `json:"version"`

	Impact  string `json:"impact"`
	Control string `json:"control"`
	Trend   string `json:"trend"`
	Other   string `json:"other"`
	// ImpactDetail is the structured §3.3 4 impact, nil until a report
	// command gives any of it.
	ImpactDetail *ImpactDetail `json:"impact_detail"`

	// FirstReportAt is when the initial report was made; DeliveredAt when
	// the broker first acknowledged it (Engine.Delivered).
	FirstReportAt time.Time `json:"first_report_at"`
	DeliveredAt   time.Time `json:"delivered_at"`
	// Review is the §3.4 review, once filed (state reviewed).
	Review *Review `json:"review"`

	AckedBy    string    `json:"acknowledged_by"`
	ResolvedBy string    `json:"resolved_by"`
	AckedAt    time.Time `json:"acknowledged_at"`
	ResolvedAt time.Time `json:"resolved_at"`
	// Resolution is resolved or false_alarm; Reason says why.
	Resolution Event  `json:"resolution"`
	Reason     string `json:"reason"`

	pb      *config.Playbook
	timers  []clock.Timer
	outputs map[string]bool // outputs this incident currently wants
}

// real reports whether the incident is neither a drill nor a walk test's.
func (inc *Incident) real() bool { return !inc.Drill && !inc.Test }

func (inc *Incident) open() bool {
	return inc.State == StateActive || inc.State == StateAcknowledged
}

// addInput adds an input to the incident; it reports whether it was new.
func (inc *Incident) addInput(id string) bool {
	if id == "" || slices.Contains(inc.Inputs, id) {
		return false
	}
	inc.Inputs = append(inc.Inputs, id)
	return true
}

// addVariant adds a variant to the incident; it reports whether it was new.
func (inc *Incident) addVariant(v string) bool {
	if v == "" || slices.Contains(inc.Variants, v) {
		return false
	}
	inc.Variants = append(inc.Variants, v)
	return true
}

// addSteps adds the steps of a variant, at the raise or when it joined
// (§4.3(b) during an armed robbery), that the incident does not have yet.
func (inc *Incident) addSteps(pb *config.Playbook, variant string) {
	for _, s := range pb.StepsFor(variant) {
		if !slices.ContainsFunc(inc.Steps, func(st StepState) bool { return st.ID == s.ID }) {
			inc.Steps = append(inc.Steps, StepState{ID: s.ID, Section: s.Section, Text: s.Text, Records: s.Records, Action: s.Action})
		}
	}
}

// press counts a further press of hold-up input in on an open robbery (a
// real one or a walk test's): a new button joins its inputs, a new variant
// its variants and steps. It reports what was new.
func (inc *Incident) press(pb *config.Playbook, in *config.Input) (newInput, newVariant bool) {
	inc.Presses++
	newInput = inc.addInput(in.ID)
	if newVariant = inc.addVariant(in.Variant); newVariant {
		inc.addSteps(pb, in.Variant)
	}
	return newInput, newVariant
}

func (inc *Incident) measure(m Measure) { inc.Measures = append(inc.Measures, m) }

func (inc *Incident) stopTimers() {
	for _, t := range inc.timers {
		t.Stop()
	}
	inc.timers = nil
}

func (inc *Incident) copy() Incident {
	c := *inc
	c.Inputs = slices.Clone(inc.Inputs)
	c.Variants = slices.Clone(inc.Variants)
	c.Steps = slices.Clone(inc.Steps)
	c.Measures = slices.Clone(inc.Measures)
	if inc.ImpactDetail != nil {
		d := *inc.ImpactDetail
		c.ImpactDetail = &d
	}
	c.pb, c.timers, c.outputs = nil, nil, nil
	return c
}

// raising describes a new incident.
type raising struct {
	pb      *config.Playbook
	variant string
	origin  Origin
	source  string // input id or person
	drill   bool
	test    bool // a hold-up press during a walk test
	// at is when the triggering event happened; trigger, when non-zero, is
	// the input event timestamp the raise follows from (for latency).
	at, trigger time.Time
	why         string
	inputs      []string // further inputs involved (smoke coincidence)
	// impact and trend, when known at once, are in the initial report.
	impact, trend string
	// notes are measures known at once (an activation inferred from lost
	// edges), in the initial report.
	notes []Measure
}

// raise opens an incident and sends its initial report at once
// (§3.1: activated immediately; §3.2: reported without delay).
func (e *Engine) raise(rq raising) *Incident {
	pb, variant, origin, source, drill, at, trigger, why := rq.pb, rq.variant, rq.origin, rq.source, rq.drill, rq.at, rq.trigger, rq.why
	now := e.clk.Now()
	if at.IsZero() {
		at = now
	}
	inc := &Incident{
		ID: e.ids(at), Playbook: pb.ID, Variant: variant, Origin: origin, Source: source,
		Drill: drill, Test: rq.test, State: StateActive, OccurredAt: at, DetectedAt: now, Presses: 1,
		Impact: Unknown, Control: Unknown, Trend: Unknown, Other: why,
		pb: pb, outputs: map[string]bool{},
	}
	if inc.Other == "" {
		inc.Other = Unknown
	}
	if rq.impact != "" {
		inc.Impact = rq.impact
	}
	if rq.trend != "" {
		inc.Trend = rq.trend
	}
	inc.addSteps(pb, variant)
	inc.addVariant(variant)
	inc.addInput(e.inputID(source))
	for _, id := range rq.inputs {
		inc.addInput(id)
	}
	e.hold(inc)
	for _, m := range rq.notes {
		inc.measure(m)
	}

	// Outputs first, so the initial report lists what was done.
	for _, po := range pb.Outputs {
		if !e.outputAllowed(inc, po.Output) {
			continue
		}
		po := po
		if po.Delay <= 0 {
			e.want(inc, po, now)
			continue
		}
		inc.timers = append(inc.timers, e.after(po.Delay.D(), func() {
			if inc.open() {
				e.want(inc, po, e.clk.Now())
				e.report(inc, EventUpdate, nil, time.Time{})
			}
		}))
	}
	for i, esc := range pb.Escalation {
		if rq.test {
			break // a walk test's press: the center sees it, nobody is called out
		}
		i, esc := i, esc
		inc.timers = append(inc.timers, e.after(esc.After.D(), func() {
			if inc.State == StateActive {
				e.escalate(inc, i, esc)
			}
		}))
	}
	e.report(inc, EventRaised, nil, trigger)
	switch {
	case drill, rq.test:
	case pb.Mode == "silent":
		// §4.3: a silent alarm must change nothing in the hall, so a running
		// drill goes on (its card, its siren); the center has the robbery,
		// and the drill's record says so.
		e.noteSilentDuringDrill(inc)
	default:
		e.abortDrill(inc) // §1.3: a real alarm takes priority over a drill
	}
	return inc
}

func (e *Engine) inputID(source string) string {
	if e.inputs[source] != nil {
		return source
	}
	return ""
}

// outputAllowed applies the silent and drill rules to one output.
func (e *Engine) outputAllowed(inc *Incident, id string) bool {
	out := e.cfg.Output(id)
	if out == nil || inc.Test {
		return false // this hall has no such output; a walk test acts on none
	}
	if inc.pb.Mode == "silent" {
		// §4.3: robbery is silent. Only outputs marked silent_ok (a police
		// link relay) may act; nothing audible, ever.
		if out.Audible || !out.SilentOK {
			return false
		}
	}
	if inc.Drill {
		// §1.3 drills: live_only outputs (the power cut) never act, and
		// others only where the playbook's drill settings allow.
		if out.LiveOnly || !slices.Contains(inc.pb.Drill.Outputs, id) {
			return false
		}
	}
	return true
}

func (e *Engine) want(inc *Incident, po config.PlaybookOutput, at time.Time) {
	inc.outputs[po.Output] = true
	section := po.Section
	if section == "" {
		section = inc.pb.Section
	}
	inc.measure(Measure{At: at, Kind: "output", Text: po.Output + " on", Section: section, By: "hallguard"})
	e.applyOutputs()
}

// applyOutputs drives every output to the OR of what open incidents want.
func (e *Engine) applyOutputs() {
	want := map[string]string{}
	for _, inc := range e.incidents {
		if !inc.open() {
			continue
		}
		for id, on := range inc.outputs {
			if on {
				want[id] = inc.Playbook + " " + inc.ID
			}
		}
	}
	for _, o := range e.cfg.Outputs {
		reason, on := want[o.ID]
		if e.outputs[o.ID] == on {
			continue
		}
		e.outputs[o.ID] = on
		if !on {
			reason = "no incident needs it"
		}
		e.sink.Drive(o.ID, on, reason)
	}
}

func (e *Engine) escalate(inc *Incident, level int, esc config.Escalation) {
	info := &EscalationInfo{Level: level + 1, Role: esc.Role, After: esc.After.D()}
	if r := e.cfg.Role(esc.Role); r != nil {
		info.Title, info.Name, info.Contact = r.Title, r.Name, r.Contact
	}
	who := info.Role
	if info.Name != "" {
		who = fmt.Sprintf("%s (%s, %s)", info.Role, info.Name, info.Contact)
	}
	inc.measure(Measure{At: e.clk.Now(), Kind: "escalation", Section: "§2",
		Text: fmt.Sprintf("not acknowledged within %s: escalated to %s", esc.After.D(), who), By: "hallguard"})
	e.report(inc, EventEscalation, info, time.Time{})
}

// report makes the incident's next report version and hands it to the sink.
func (e *Engine) report(inc *Incident, event Event, esc *EscalationInfo, trigger time.Time) {
	inc.Version++
	e.seq++
	now := e.clk.Now()
	if inc.Version == 1 {
		inc.FirstReportAt = now
	}
	r := Report{
		ID: fmt.Sprintf("%s.v%d", inc.ID, inc.Version), Incident: inc.ID, Seq: e.seq, Version: inc.Version,
		Event: event, Playbook: inc.Playbook, Section: inc.pb.Section, Variant: inc.Variant,
		Origin: inc.Origin, Source: inc.Source, State: inc.State, Drill: inc.Drill, Test: inc.Test, Silent: inc.pb.Mode == "silent",
		Hall: e.cfg.Hall, OccurredAt: inc.OccurredAt, Type: inc.pb.Type,
		Impact: inc.Impact, Control: inc.Control, Trend: inc.Trend, Other: inc.Other,
		Measures: slices.Clone(inc.Measures), Steps: slices.Clone(inc.Steps), Escalation: esc,
		Presses: inc.Presses, Inputs: slices.Clone(inc.Inputs), Created: now, Trigger: trigger,
	}
	if len(inc.Variants) > 1 {
		r.Variants = slices.Clone(inc.Variants)
	}
	if inc.ImpactDetail != nil {
		d := *inc.ImpactDetail
		r.ImpactDetail = &d
	}
	if inc.Review != nil {
		rv := *inc.Review
		rv.Actions = slices.Clone(inc.Review.Actions)
		r.Review = &rv
	}
	if !inc.open() {
		// §3.3: the final report (resolved, false alarm, reviewed) holds
		// the whole course of the incident.
		r.Timeline = inc.timeline()
	}
	if v := inc.pb.Variant(inc.Variant); v != nil && v.Section != "" {
		r.Section = v.Section
	}
	e.sink.Report(r)
}

// close resolves an incident (resolution resolved or false_alarm).
func (e *Engine) close(inc *Incident, resolution Event, by, reason string) {
	now := e.clk.Now()
	inc.State = StateResolved
	inc.Resolution, inc.ResolvedBy, inc.ResolvedAt, inc.Reason = resolution, by, now, reason
	inc.stopTimers()
	for id := range inc.outputs {
		inc.outputs[id] = false
	}
	text := "resolved"
	if resolution == EventFalseAlarm {
		text = "closed as false alarm"
	}
	if reason != "" {
		text += ": " + reason
	}
	if !inc.Drill {
		e.preserveUndoneCCTV(inc)
	}
	inc.measure(Measure{At: now, Kind: "resolve", Text: text, By: by})
	e.applyOutputs()
	event := EventResolved
	if resolution == EventFalseAlarm {
		event = EventFalseAlarm
	}
	e.report(inc, event, nil, time.Time{})
	if inc.Drill {
		e.drillClosed(inc)
	}
	e.evict()
}
