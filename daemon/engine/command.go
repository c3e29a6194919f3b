package engine

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
)

// Verb is what a command asks for: the last level of its MQTT topic
// (cmd/<verb>), the CLI's `hallguard cmd VERB`, the console's action.
type Verb string

// Command verbs: every verb a hall accepts (Verbs).
const (
	VerbAck        Verb = "ack"
	VerbResolve    Verb = "resolve"
	VerbFalseAlarm Verb = "false_alarm"
	VerbStep       Verb = "step"
	VerbTrigger    Verb = "trigger"
	VerbReport     Verb = "report"
	// VerbReceived is the center's end-to-end acknowledgement of a report
	// (on mqtt.ack_topic): the daemon settles it, never the engine.
	VerbReceived Verb = "received"
	// VerbDrill starts, stops or evaluates a drill (§1.3), or a walk
	// test; Command.Action says which.
	VerbDrill Verb = "drill"
	// VerbTest fires one input's test path: its playbook is raised as a
	// drill from that input (Command.Input), as if it had been pressed,
	// with drill: true on every message and no live_only output (§1.3).
	VerbTest Verb = "test"
	// VerbReview files the post-incident review (§3.4) of a resolved
	// incident.
	VerbReview Verb = "review"
)

// Verbs are every verb a hall accepts, in the order the CLI lists them.
var Verbs = []Verb{VerbAck, VerbResolve, VerbFalseAlarm, VerbStep, VerbTrigger, VerbReport, VerbReceived, VerbDrill, VerbTest, VerbReview}

func (v Verb) String() string { return string(v) }

// Command is a request from staff or the center. The mqtt and CLI layers
// decode and authenticate it; the engine decides whether it is allowed.
type Command struct {
	ID       string // the sender's command id, echoed in replies
	Verb     Verb
	Incident string
	Step     string
	Playbook string
	Variant  string
	// By names the person; Origin is staff or center.
	By     string
	Origin Origin
	// Authenticated is set by the transport when the command's signature
	// checked out. A robbery is resolved only by an authenticated center
	// command (§4.3: nothing in the hall can clear it).
	Authenticated bool
	Reason        string
	// Records holds what a step records (names of witnesses, the agreed
	// message, a count), in the order the step lists them.
	Records []string
	// Report updates (§3.3 4–7); nil leaves a field as it is.
	Impact, Control, Trend, Other *string
	// ImpactDetail updates the structured §3.3 4 impact: keys property,
	// cash_vouchers, casualties, scope (ImpactKeys).
	ImpactDetail map[string]string
	// Drill (§1.3): Action is start, stop or evaluate; Participants are
	// who takes part; Drill names the drill (its incident id) to stop or
	// evaluate; an evaluation's comment is in Reason.
	Action       string
	Participants []string
	Drill        string
	// Input is the input whose test path VerbTest fires.
	Input string
	// Inputs names the inputs or zones a walk test (walk_start) covers;
	// every other input stays live.
	Inputs []string
	// Review is what VerbReview files (§3.4); the engine fills in the
	// incident, who and when.
	Review *Review
}

// Sentinel errors for rejected commands; callers count them by reason.
var (
	ErrUnknownVerb     = errors.New("unknown verb")
	ErrUnknownIncident = errors.New("unknown incident")
	ErrNotAllowed      = errors.New("not allowed for this incident")
	ErrBadCommand      = errors.New("bad command")
)

// Do carries out a command and returns the incident it touched.
func (e *Engine) Do(c Command) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c.By == "" {
		return "", fmt.Errorf("%w: who is acting (by) is required", ErrBadCommand)
	}
	if c.Origin != OriginStaff && c.Origin != OriginCenter {
		return "", fmt.Errorf("%w: origin must be staff or center", ErrBadCommand)
	}
	switch c.Verb {
	case VerbTrigger:
		return e.trigger(c)
	case VerbDrill:
		return e.drillCmd(c)
	case VerbTest:
		return e.testInput(c)
	case VerbReview:
		return e.review(c)
	}
	inc, ok := e.incidents[c.Incident]
	if !ok {
		switch c.Verb {
		case VerbAck, VerbResolve, VerbFalseAlarm, VerbStep, VerbReport:
			return "", fmt.Errorf("%w %q", ErrUnknownIncident, c.Incident)
		}
		return "", fmt.Errorf("%w %q", ErrUnknownVerb, c.Verb)
	}
	now := e.clk.Now()
	var err error
	switch c.Verb {
	case VerbAck:
		err = e.ackCmd(inc, c, now)
	case VerbResolve, VerbFalseAlarm:
		err = e.resolveCmd(inc, c)
	case VerbStep:
		err = e.stepCmd(inc, c, now)
	case VerbReport:
		err = e.reportCmd(inc, c)
	default:
		err = fmt.Errorf("%w %q", ErrUnknownVerb, c.Verb)
	}
	return inc.ID, err
}

// ackCmd acknowledges an active incident (VerbAck).
func (e *Engine) ackCmd(inc *Incident, c Command, now time.Time) error {
	if inc.State != StateActive {
		return fmt.Errorf("%w: incident is %s", ErrNotAllowed, inc.State)
	}
	inc.State = StateAcknowledged
	inc.AckedBy, inc.AckedAt = c.By, now
	inc.measure(Measure{At: now, Kind: "ack", Text: "acknowledged by " + c.Origin.String(), By: c.By})
	e.report(inc, EventAcknowledged, nil, time.Time{})
	return nil
}

// resolveCmd closes an open incident as resolved (VerbResolve) or as a
// false alarm (VerbFalseAlarm, with a reason).
func (e *Engine) resolveCmd(inc *Incident, c Command) error {
	if !inc.open() {
		return fmt.Errorf("%w: incident is %s", ErrNotAllowed, inc.State)
	}
	if inc.pb.ResolveBy == "center" && (c.Origin != OriginCenter || !c.Authenticated) {
		return fmt.Errorf("%w: %s is resolved only by an authenticated center command (%s)", ErrNotAllowed, inc.Playbook, inc.pb.Section)
	}
	if c.Verb == VerbFalseAlarm && strings.TrimSpace(c.Reason) == "" {
		return fmt.Errorf("%w: a false alarm needs a reason", ErrBadCommand)
	}
	res := EventResolved
	if c.Verb == VerbFalseAlarm {
		res = EventFalseAlarm
	}
	e.close(inc, res, c.By, c.Reason)
	return nil
}

// stepCmd marks a step of an open incident done (VerbStep).
func (e *Engine) stepCmd(inc *Incident, c Command, now time.Time) error {
	if !inc.open() {
		return fmt.Errorf("%w: incident is %s", ErrNotAllowed, inc.State)
	}
	i := -1
	for j := range inc.Steps {
		if inc.Steps[j].ID == c.Step {
			i = j
		}
	}
	if i < 0 {
		return fmt.Errorf("%w: no step %q in %s", ErrBadCommand, c.Step, inc.Playbook)
	}
	st := &inc.Steps[i]
	if st.Done {
		return fmt.Errorf("%w: step %q already done by %s", ErrNotAllowed, st.ID, st.By)
	}
	if err := checkRecords(st, c.Records); err != nil {
		return err
	}
	st.Done, st.By, st.At = true, c.By, now
	text := st.ID
	if len(c.Records) > 0 {
		text += " (" + strings.Join(c.Records, "; ") + ")"
	}
	inc.measure(Measure{At: now, Kind: "step", Text: text, Section: st.Section, By: c.By})
	if st.Action == "preserve_cctv" && !st.cctv && !inc.Drill {
		e.preserveCCTV(inc, st)
	}
	e.report(inc, EventStep, nil, time.Time{})
	return nil
}

// reportCmd updates the §3.3 4–7 items of an incident not yet reviewed
// (VerbReport) and sends the updated report.
func (e *Engine) reportCmd(inc *Incident, c Command) error {
	if inc.State == StateReviewed {
		return fmt.Errorf("%w: incident is reviewed", ErrNotAllowed)
	}
	detailed, err := setImpact(inc, c.ImpactDetail)
	if err != nil {
		return err
	}
	changed := false
	for _, f := range []struct {
		dst *string
		src *string
	}{{&inc.Impact, c.Impact}, {&inc.Control, c.Control}, {&inc.Trend, c.Trend}, {&inc.Other, c.Other}} {
		if f.src != nil {
			*f.dst = *f.src
			changed = true
		}
	}
	if !changed && !detailed {
		return fmt.Errorf("%w: a report update names impact, impact_detail, control, trend or other", ErrBadCommand)
	}
	e.report(inc, EventUpdate, nil, time.Time{})
	return nil
}

func (e *Engine) trigger(c Command) (string, error) {
	pb := e.cfg.Playbook(c.Playbook)
	if pb == nil {
		return "", fmt.Errorf("%w: no playbook %q", ErrBadCommand, c.Playbook)
	}
	if !pb.Manual {
		return "", fmt.Errorf("%w: playbook %q is not raised by hand", ErrNotAllowed, pb.ID)
	}
	if err := checkVariant(pb, c.Variant); err != nil {
		return "", err
	}
	if inc := e.openIncident(pb.ID, false); inc != nil && inc.Variant == c.Variant {
		return inc.ID, fmt.Errorf("%w: %s is already open as %s", ErrNotAllowed, pb.ID, inc.ID)
	}
	inc := e.raise(raising{pb: pb, variant: c.Variant, origin: c.Origin, source: c.By, at: e.clk.Now(), why: c.Reason})
	return inc.ID, nil
}

// checkVariant refuses a variant pb does not have, when pb has variants,
// naming those it has: trigger and a drill start both need one.
func checkVariant(pb *config.Playbook, variant string) error {
	if len(pb.Variants) == 0 || pb.Variant(variant) != nil {
		return nil
	}
	ids := make([]string, len(pb.Variants))
	for i, v := range pb.Variants {
		ids[i] = v.ID
	}
	return fmt.Errorf("%w: playbook %q needs a variant: %s", ErrBadCommand, pb.ID, strings.Join(ids, ", "))
}

// Rejection is why a command was refused, a fixed label: the result of
// hallguard_commands_total{verb,result}, the reason of a command_rejected
// journal record and of the reply. Every one is in Rejections; the
// transport's (mqtt/command.Reason), the engine's (Reason), the daemon's
// and the console's alike.
type Rejection string

// Rejections.
const (
	// The transport's: mqtt/command.Reason.
	RejectTooLarge     Rejection = "too_large"
	RejectBadPayload   Rejection = "bad_payload"
	RejectUnknownVerb  Rejection = "unknown_verb"
	RejectUnsigned     Rejection = "unsigned"
	RejectBadSignature Rejection = "bad_signature"
	RejectExpired      Rejection = "expired"
	RejectReplay       Rejection = "replay"
	RejectOther        Rejection = "rejected" // a transport error of no other kind
	// The engine's: Reason (and RejectUnknownVerb, RejectBadPayload).
	RejectUnknownIncident Rejection = "unknown_incident"
	RejectNotAllowed      Rejection = "not_allowed"
	// The daemon's: a received naming no report awaiting it; a command
	// dropped when the intake is full.
	RejectUnknownReport Rejection = "unknown_report"
	RejectOverload      Rejection = "overload"
	// The console's: a wrong PIN, or the right one with an action that
	// cannot be done (the page is not told which: refused; the journal is:
	// bad_pin); too many refused PINs; a page of another origin; a request
	// it cannot read.
	RejectRefused    Rejection = "refused"
	RejectBadPIN     Rejection = "bad_pin"
	RejectLocked     Rejection = "locked"
	RejectCSRF       Rejection = "csrf"
	RejectBadRequest Rejection = "bad_request"
)

// Rejections are every rejection.
var Rejections = []Rejection{RejectTooLarge, RejectBadPayload, RejectUnknownVerb, RejectUnsigned, RejectBadSignature,
	RejectExpired, RejectReplay, RejectOther, RejectUnknownIncident, RejectNotAllowed, RejectUnknownReport, RejectOverload,
	RejectRefused, RejectBadPIN, RejectLocked, RejectCSRF, RejectBadRequest}

func (r Rejection) String() string { return string(r) }

// Reason maps a refusal from Do to its fixed label for metrics and replies:
// unknown_incident, not_allowed, unknown_verb or bad_payload.
func Reason(err error) Rejection {
	switch {
	case errors.Is(err, ErrUnknownIncident):
		return RejectUnknownIncident
	case errors.Is(err, ErrNotAllowed):
		return RejectNotAllowed
	case errors.Is(err, ErrUnknownVerb):
		return RejectUnknownVerb
	default:
		return RejectBadPayload
	}
}
