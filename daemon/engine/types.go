package engine

import (
	"encoding/json"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
)

// Sink receives the engine's effects. Every method is called with the
// engine's lock held: it must hand off and return, never block or call back.
type Sink interface {
	// Report is an incident report to journal and send (§3.2, §3.3).
	Report(Report)
	// Drive sets an output: active true drives it, false returns it to rest.
	Drive(output string, active bool, reason string)
	// Input is the new state of one input.
	Input(InputState)
	// Queue is the new state of the queue model (§4.1).
	Queue(QueueState)
	// Condition is a trouble, tamper or supervisory condition raised or
	// cleared.
	Condition(Condition)
}

// Sinks are every sink the engine is given: Sink takes the effects every
// engine has; each optional sink takes one kind of record, and a nil one
// drops it. They are named fields, never found by type assertion, so a
// sink whose method was renamed or dropped does not build. Like Sink's
// methods, every optional sink's method is called with the engine's lock
// held: it must hand off and return.
type Sinks struct {
	// Sink must not be nil.
	Sink
	// Drill takes drill records (§1.3); nil: none are kept.
	Drill DrillSink
	// Walk takes walk-test records; nil: none are kept.
	Walk WalkSink
	// Review takes reviews (§3.4); nil: none are sent.
	Review ReviewSink
	// CCTV takes CCTV bookmark requests (with cctv.topic set); nil: each
	// is noted "keep it by hand" in the incident's measures.
	CCTV CCTVSink
}

// State is an incident's state: active → acknowledged → resolved →
// reviewed. Its text is the report's "state".
type State string

// Incident states.
const (
	StateActive       State = "active"
	StateAcknowledged State = "acknowledged"
	StateResolved     State = "resolved"
	StateReviewed     State = "reviewed"
)

func (s State) String() string { return string(s) }

// Origin is what raised an incident, or sent a command (staff or center).
// Its text is the report's "origin" and the incidents_total label.
type Origin string

// Origins of an incident.
const (
	OriginButton Origin = "button" // panic button, call point
	OriginSensor Origin = "sensor" // smoke detector, queue counters
	OriginProbe  Origin = "probe"  // business system health probe (§4.2)
	OriginStaff  Origin = "staff"  // hall staff: CLI, console, manual input
	OriginCenter Origin = "center" // monitoring center command
)

func (o Origin) String() string { return string(o) }

// Event is why a report was sent. Its text is the report's "event".
type Event string

// Report events.
const (
	EventRaised       Event = "raised"
	EventUpdate       Event = "update"
	EventAcknowledged Event = "acknowledged"
	EventEscalation   Event = "escalation"
	EventStep         Event = "step"
	EventResolved     Event = "resolved"
	EventFalseAlarm   Event = "false_alarm"
)

func (ev Event) String() string { return string(ev) }

// Unknown marks a §3.3 field not yet known (§3.2: never guessed, never omitted).
const Unknown = "unknown"

// Report is one version of an incident's report to the center (§3.3).
//
// Its JSON (the journal's "report" records, the daemon's exports) uses the
// lower-case names of the MQTT report (mqtt.ReportPayload) for the fields
// they share. The nested shapes stay the engine's own: a step's text is
// {"text":{"zh","en"}} where MQTT has flat zh/en, an escalation's "after"
// is in nanoseconds where MQTT has after_seconds, and an unset time is the
// zero time where MQTT has null. UnmarshalJSON also reads the Go field names that journals
// written before these tags (07a6525 and earlier) hold.
type Report struct {
	// ID is unique per report and stable across redelivery: incident.vN.
	ID       string `json:"id"`
	Incident string `json:"incident"`
	// Seq increases by one for every report the engine makes.
	Seq     uint64 `json:"seq"`
	Version int    `json:"version"`
	Event   Event  `json:"event"`

	Playbook string `json:"playbook"`
	Section  string `json:"section"`
	Variant  string `json:"variant"`
	Origin   Origin `json:"origin"`
	Source   string `json:"source"` // input id or person that raised it
	State    State  `json:"state"`
	Drill    bool   `json:"drill"`
	// Test marks a hold-up press during a walk test: sent on the normal
	// alerts topic, so the center sees every press, flagged as a test.
	Test   bool `json:"test"`
	Silent bool `json:"silent"`

	Hall       config.Hall `json:"hall"`        // §3.3 1
	OccurredAt time.Time   `json:"occurred_at"` // §3.3 2
	Type       config.Text `json:"type"`        // §3.3 3
	Impact     string      `json:"impact"`      // §3.3 4
	// ImpactDetail is the structured §3.3 4 impact; nil until given.
	ImpactDetail *ImpactDetail `json:"impact_detail"`
	Measures     []Measure     `json:"measures"` // §3.3 5
	Control      string        `json:"control"`  // §3.3 5
	Trend        string        `json:"trend"`    // §3.3 6
	Other        string        `json:"other"`    // §3.3 7

	Steps      []StepState     `json:"steps"`
	Escalation *EscalationInfo `json:"escalation"`
	// Timeline is set on the final reports (resolved, false_alarm,
	// reviewed): the incident's course and its durations.
	Timeline *Timeline `json:"timeline"`
	// Review is set on the reviewed report (§3.4).
	Review  *Review  `json:"review"`
	Presses int      `json:"presses"`
	Inputs  []string `json:"inputs"`
	// Variants are every variant that joined the incident, its own first;
	// nil unless a second one joined (a vault foot rail, §4.3(b), during an
	// armed robbery).
	Variants []string `json:"variants"`

	// Created is the engine time the report was made.
	Created time.Time `json:"created_at"`
	// Trigger is the timestamp of the input event behind this report (zero
	// for reports not caused by an input), for the event-to-PUBACK latency.
	Trigger time.Time `json:"trigger_at"`
}

// UnmarshalJSON reads a report in its JSON (the tags above) or in the
// encoding of journals written before them, with Go's field names
// ("OccurredAt"). encoding/json matches keys without regard to case, so only
// the names of more than one word need reading here; a name in the current
// encoding wins over its old spelling.
func (r *Report) UnmarshalJSON(b []byte) error {
	type plain Report // plain has no methods: no recursion
	v := struct {
		*plain
		OldOccurredAt   *time.Time    `json:"OccurredAt"`
		OldImpactDetail *ImpactDetail `json:"ImpactDetail"`
		OldCreated      *time.Time    `json:"Created"`
		OldTrigger      *time.Time    `json:"Trigger"`
	}{plain: (*plain)(r)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if v.OldOccurredAt != nil && r.OccurredAt.IsZero() {
		r.OccurredAt = *v.OldOccurredAt
	}
	if v.OldImpactDetail != nil && r.ImpactDetail == nil {
		r.ImpactDetail = v.OldImpactDetail
	}
	if v.OldCreated != nil && r.Created.IsZero() {
		r.Created = *v.OldCreated
	}
	if v.OldTrigger != nil && r.Trigger.IsZero() {
		r.Trigger = *v.OldTrigger
	}
	return nil
}

// Measure is something done about an incident: by the daemon (outputs,
// escalations) or by people (steps).
type Measure struct {
	At      time.Time `json:"at"`
	Kind    string    `json:"kind"` // output | escalation | step | note | ack | resolve
	Text    string    `json:"text"`
	Section string    `json:"section,omitempty"`
	By      string    `json:"by,omitempty"`
}

// StepState is one playbook step and whether it has been done.
type StepState struct {
	ID      string      `json:"id"`
	Section string      `json:"section"`
	Text    config.Text `json:"text"`
	Done    bool        `json:"done"`
	By      string      `json:"by"`
	At      time.Time   `json:"at"`
	Records []string    `json:"records"`
	// Action is the step's automatic action (preserve_cctv).
	Action string `json:"action"`
	cctv   bool   // its CCTV bookmark was requested
}

// EscalationInfo names whom an escalation report goes to (§2).
type EscalationInfo struct {
	Level   int    `json:"level"`
	Role    string `json:"role"`
	Title   string `json:"title"`
	Name    string `json:"name"`
	Contact string `json:"contact"`
	// After is how long after the incident was raised, in nanoseconds.
	After time.Duration `json:"after"`
}

// InputState is the published state of one input.
type InputState struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Active bool   `json:"active"`
	// State is idle, active, pre-alarm (unverified smoke) or fault.
	State     string    `json:"state"`
	Since     time.Time `json:"since"`
	Faults    []string  `json:"faults,omitempty"`
	Edges     uint64    `json:"edges"`
	LostEdges uint64    `json:"lost_edges"`
}

// QueueState is the published state of the queue model.
// It is never encoded itself: MQTT and the console each have their own
// view of it (mqtt.QueuePayload, the console's QueueView).
type QueueState struct {
	Length     int
	Rate       float64 // arrivals per minute over the rate window
	Arrivals   uint64
	Departures uint64
	Surge      bool
	At         time.Time
}

// Class is a condition's class, as professional panels have them. Its
// text is the condition's "class" and the conditions topic's label.
type Class string

// Condition classes.
const (
	ClassAlarm       Class = "alarm"
	ClassSupervisory Class = "supervisory"
	ClassTrouble     Class = "trouble"
	ClassTamper      Class = "tamper"
)

func (c Class) String() string { return string(c) }

// Condition is a non-incident signal: trouble, tamper or supervisory.
type Condition struct {
	Class  Class     `json:"class"`
	Kind   string    `json:"kind"`            // stuck, loop_open, lost_edges, line_lost, pre_alarm, tamper, ...
	Input  string    `json:"input,omitempty"` // empty for daemon-wide conditions
	Active bool      `json:"active"`
	Time   time.Time `json:"time"`
	Detail string    `json:"detail,omitempty"`
	Count  uint64    `json:"count,omitempty"`

	// Output names the output of an output condition (output_failed).
	Output string `json:"output,omitempty"`
}
