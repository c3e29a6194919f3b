package mqtt

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/hallguard/hallguard/daemon/engine"
)

// ReportPayload is the JSON of one incident report (§3.2, §3.3), sent to
// alerts/<playbook> (drills/alerts/<playbook> for drills) and retained on
// incidents/<incident-id>. Every field is always present: the §3.3 fields are
// never omitted, and impact, control, trend and other read "unknown" until
// known (§3.2: no guess, no gap). Times are UTC RFC 3339 with nanoseconds, or
// null when not set. Only escalation is left out, when the report is not an
// escalation.
//
//	id           report id, "<incident>.v<version>"; unique per report and the
//	             same on every redelivery: receivers de-duplicate on it
//	incident     incident id (sortable, unique)
//	seq          daemon-wide report sequence number, +1 per report
//	version      report version within the incident, 1, 2, 3, ...
//	event        why this report: raised, update, acknowledged, escalation,
//	             step, resolved, false_alarm
//	playbook     playbook id: robbery, fire, surge, system_failure, ...
//	section      plan section of the playbook or its variant, e.g. "§4.3(a)"
//	state        incident state: active, acknowledged, resolved, reviewed
//	origin       what raised it: button, sensor, probe, staff, center
//	source       input id or person that raised it
//	drill        true for a drill (§1.3): never a real emergency
//	test         true for a hold-up press during a walk test of that input,
//	             sent on alerts/<playbook> so the center sees every press;
//	             left out otherwise
//	silent       true for silent playbooks (robbery): nothing sounds in the hall
//	hall         §3.3 1: {"id", "name", "location"} of the hall
//	occurred_at  §3.3 2: when the event happened
//	type         §3.3 3: the event type in English ("robbery")
//	type_zh      §3.3 3: the event type in Chinese ("抢劫")
//	variant      case of the playbook (robbery: armed, explosive, gas), or ""
//	impact       §3.3 4: impact and degree of harm
//	measures     §3.3 5: measures taken, oldest first, [] when none; each
//	             {"at", "kind" (output, escalation, step, note, ack,
//	             resolve), "text", "section", "by"}
//	control      §3.3 5: how far the event is under control
//	trend        §3.3 6: how it develops, potential losses, next measures
//	other        §3.3 7: anything else relevant
//	steps        the playbook's steps, each {"id", "section", "zh", "en",
//	             "done", "by", "at" (null until done)}
//	escalation   escalation reports only: {"level", "role", "title", "name",
//	             "contact", "after_seconds"} of whom it escalates to (§2)
//	presses      how many times the panic button was pressed
//	inputs       ids of the inputs involved, [] when none
//	variants     every variant involved, the incident's own first; left out
//	             unless a second one joined (a new input or variant joining
//	             an open incident sends an update report)
//	redelivered  true when this report id may have been sent before (a resend
//	             after a lost connection, or a replay after a restart)
//	sent_at      when this copy was handed to the MQTT client
//	not_durable  true when this copy left before the journal had it on disk (a failing or hung disk: trouble journal_degraded or journal_slow is raised); left out otherwise
//	journal      the hall journal's chain head when this copy was sent:
//	             {"seq", "hash"} of its last record; left out only by a
//	             publisher without a journal. The center keeps it: `hallguard journal verify
//	             -anchor` checks the hall's archive against it (issue #12 §5)
//	impact_detail  §3.3 4 structured, left out until any of it is given: {"property", "cash_vouchers", "casualties", "scope"}, each "unknown" until given
//	timeline     final reports only (resolved, false_alarm, reviewed), left out otherwise: engine.Timeline
//	review       the reviewed report only (§3.4): engine.Review; left out otherwise
type ReportPayload struct {
	ID          string             `json:"id"`
	Incident    string             `json:"incident"`
	Seq         uint64             `json:"seq"`
	Version     int                `json:"version"`
	Event       engine.Event       `json:"event"`
	Playbook    string             `json:"playbook"`
	Section     string             `json:"section"`
	State       engine.State       `json:"state"`
	Origin      engine.Origin      `json:"origin"`
	Source      string             `json:"source"`
	Drill       bool               `json:"drill"`
	Test        bool               `json:"test,omitempty"`
	Silent      bool               `json:"silent"`
	Hall        HallPayload        `json:"hall"`
	OccurredAt  *time.Time         `json:"occurred_at"`
	Type        string             `json:"type"`
	TypeZH      string             `json:"type_zh"`
	Variant     string             `json:"variant"`
	Impact      string             `json:"impact"`
	Measures    []MeasurePayload   `json:"measures"`
	Control     string             `json:"control"`
	Trend       string             `json:"trend"`
	Other       string             `json:"other"`
	Steps       []StepPayload      `json:"steps"`
	Escalation  *EscalationPayload `json:"escalation,omitempty"`
	Presses     int                `json:"presses"`
	Inputs      []string           `json:"inputs"`
	Variants    []string           `json:"variants,omitempty"`
	Redelivered bool               `json:"redelivered"`
	SentAt      *time.Time         `json:"sent_at"`
	// NotDurable: sent from memory before the journal had it on disk.
	NotDurable bool            `json:"not_durable,omitempty"`
	Journal    *JournalPayload `json:"journal,omitempty"`

	ImpactDetail *engine.ImpactDetail `json:"impact_detail,omitempty"`
	Timeline     *engine.Timeline     `json:"timeline,omitempty"`
	Review       *engine.Review       `json:"review,omitempty"`
}

// JournalPayload is the journal's chain head carried by a report.
type JournalPayload struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// HallPayload identifies the hall (§3.3 1).
type HallPayload struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Location string `json:"location"`
}

// MeasurePayload is one measure taken (§3.3 5).
type MeasurePayload struct {
	At      *time.Time `json:"at"`
	Kind    string     `json:"kind"`
	Text    string     `json:"text"`
	Section string     `json:"section"`
	By      string     `json:"by"`
}

// StepPayload is one playbook step and whether it is done.
type StepPayload struct {
	ID      string     `json:"id"`
	Section string     `json:"section"`
	ZH      string     `json:"zh"`
	EN      string     `json:"en"`
	Done    bool       `json:"done"`
	By      string     `json:"by"`
	At      *time.Time `json:"at"`
}

// EscalationPayload names whom an escalation report goes to (§2).
type EscalationPayload struct {
	Level        int     `json:"level"`
	Role         string  `json:"role"`
	Title        string  `json:"title"`
	Name         string  `json:"name"`
	Contact      string  `json:"contact"`
	AfterSeconds float64 `json:"after_seconds"`
}

// MarshalReport returns the JSON of r as sent at sentAt (see ReportPayload).
// redelivered is false; the sender sets it on resends.
func MarshalReport(r engine.Report, sentAt time.Time) ([]byte, error) {
	return marshal(NewReportPayload(r, sentAt))
}

// NewReportPayload converts r to its payload.
func NewReportPayload(r engine.Report, sentAt time.Time) ReportPayload {
	p := ReportPayload{
		ID: r.ID, Incident: r.Incident, Seq: r.Seq, Version: r.Version, Event: r.Event,
		Playbook: r.Playbook, Section: r.Section, State: r.State, Origin: r.Origin, Source: r.Source,
		Drill: r.Drill, Test: r.Test, Silent: r.Silent,
		Hall:       HallPayload{ID: r.Hall.ID, Name: r.Hall.Name, Location: r.Hall.Location},
		OccurredAt: jsonTime(r.OccurredAt),
		Type:       known(r.Type.EN), TypeZH: known(r.Type.ZH), Variant: r.Variant,
		Impact: known(r.Impact), Control: known(r.Control), Trend: known(r.Trend), Other: known(r.Other),
		Measures: make([]MeasurePayload, 0, len(r.Measures)),
		Steps:    make([]StepPayload, 0, len(r.Steps)),
		Presses:  r.Presses,
		Inputs:   append(make([]string, 0, len(r.Inputs)), r.Inputs...),
		Variants: r.Variants,
		SentAt:   jsonTime(sentAt),

		ImpactDetail: r.ImpactDetail, Timeline: r.Timeline, Review: r.Review,
	}
	for _, m := range r.Measures {
		p.Measures = append(p.Measures, MeasurePayload{At: jsonTime(m.At), Kind: m.Kind, Text: m.Text, Section: m.Section, By: m.By})
	}
	for _, s := range r.Steps {
		p.Steps = append(p.Steps, StepPayload{ID: s.ID, Section: s.Section, ZH: s.Text.ZH, EN: s.Text.EN, Done: s.Done, By: s.By, At: jsonTime(s.At)})
	}
	if e := r.Escalation; e != nil {
		p.Escalation = &EscalationPayload{Level: e.Level, Role: e.Role, Title: e.Title, Name: e.Name,
			Contact: e.Contact, AfterSeconds: e.After.Seconds()}
	}
	return p
}

// InputPayload is the retained JSON on inputs/<input-id>.
type InputPayload struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Active bool   `json:"active"`
	// State is idle, active, pre-alarm (unverified smoke) or fault.
	State     string     `json:"state"`
	Since     *time.Time `json:"since"`
	Faults    []string   `json:"faults"`
	Edges     uint64     `json:"edges"`
	LostEdges uint64     `json:"lost_edges"`
}

func newInputPayload(s engine.InputState) InputPayload {
	return InputPayload{ID: s.ID, Kind: s.Kind, Active: s.Active, State: s.State, Since: jsonTime(s.Since),
		Faults: append(make([]string, 0, len(s.Faults)), s.Faults...), Edges: s.Edges, LostEdges: s.LostEdges}
}

// QueuePayload is the retained JSON on queue (§4.1).
type QueuePayload struct {
	Length int `json:"length"`
	// Rate is arrivals per minute over the rate window.
	Rate       float64    `json:"rate"`
	Arrivals   uint64     `json:"arrivals"`
	Departures uint64     `json:"departures"`
	Surge      bool       `json:"surge"`
	At         *time.Time `json:"at"`
}

func newQueuePayload(q engine.QueueState) QueuePayload {
	rate := q.Rate
	if math.IsNaN(rate) || math.IsInf(rate, 0) { // JSON has no NaN
		rate = 0
	}
	return QueuePayload{Length: q.Length, Rate: rate, Arrivals: q.Arrivals, Departures: q.Departures, Surge: q.Surge, At: jsonTime(q.At)}
}

// ConditionPayload is one trouble, tamper or supervisory condition: an
// element of the retained array on conditions, and the JSON of each change
// on events/condition.
type ConditionPayload struct {
	Class  engine.Class `json:"class"`
	Kind   string       `json:"kind"`
	Input  string       `json:"input"` // "" for daemon-wide conditions
	Active bool         `json:"active"`
	Time   *time.Time   `json:"time"`
	Detail string       `json:"detail"`
	Count  uint64       `json:"count"`

	// Output names the output of output_failed; left out otherwise.
	Output string `json:"output,omitempty"`
}

func newConditionPayload(c engine.Condition) ConditionPayload {
	return ConditionPayload{Class: c.Class, Kind: c.Kind, Input: c.Input, Output: c.Output, Active: c.Active, Time: jsonTime(c.Time), Detail: c.Detail, Count: c.Count}
}

// conditionsPayload is the retained array: active conditions in a stable
// order (class, kind, input, output), [] when none.
func conditionsPayload(active map[condKey]engine.Condition) []ConditionPayload {
	out := make([]ConditionPayload, 0, len(active))
	for _, c := range active {
		out = append(out, newConditionPayload(c))
	}
	slices.SortFunc(out, func(a, b ConditionPayload) int {
		return cmp.Or(cmp.Compare(a.Class, b.Class), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Input, b.Input), cmp.Compare(a.Output, b.Output))
	})
	return out
}

type condKey struct {
	class               engine.Class
	kind, input, output string
}

func keyOf(c engine.Condition) condKey { return condKey{c.Class, c.Kind, c.Input, c.Output} }

func known(s string) string {
	if s == "" {
		return engine.Unknown
	}
	return s
}

// jsonTime is t in UTC, or nil (null) for the zero time and for years JSON
// cannot hold (so that marshalling a payload cannot fail).
func jsonTime(t time.Time) *time.Time {
	if t.IsZero() || t.Year() < 0 || t.Year() > 9999 {
		return nil
	}
	u := t.UTC()
	return &u
}

func marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("mqtt: marshal %T: %w", v, err)
	}
	return b, nil
}
