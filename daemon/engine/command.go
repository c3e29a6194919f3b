package engine

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Command verbs.
const (
	VerbAck        = "ack"
	VerbResolve    = "resolve"
	VerbFalseAlarm = "false_alarm"
	VerbStep       = "step"
	VerbTrigger    = "trigger"
	VerbReport     = "report"
)

// Command is a request from staff or the center. The mqtt and CLI layers
// decode and authenticate it; the engine decides whether it is allowed.
type Command struct {
	ID       string // the sender's command id, echoed in replies
	Verb     string
	Incident string
	Step     string
	Playbook string
	Variant  string
	// By names the person; Origin is staff or center.
	By     string
	Origin string
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
	inc.measure(Measure{At: now, Kind: "ack", Text: "acknowledged by " + c.Origin, By: c.By})
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
	if len(pb.Variants) > 0 && pb.Variant(c.Variant) == nil {
		ids := make([]string, len(pb.Variants))
		for i, v := range pb.Variants {
			ids[i] = v.ID
		}
		return "", fmt.Errorf("%w: playbook %q needs a variant: %s", ErrBadCommand, pb.ID, strings.Join(ids, ", "))
	}
	if inc := e.openIncident(pb.ID, false); inc != nil && inc.Variant == c.Variant {
		return inc.ID, fmt.Errorf("%w: %s is already open as %s", ErrNotAllowed, pb.ID, inc.ID)
	}
	inc := e.raise(raising{pb: pb, variant: c.Variant, origin: c.Origin, source: c.By, at: e.clk.Now(), why: c.Reason})
	return inc.ID, nil
}

// Reason maps a refusal from Do to its fixed label for metrics and replies:
// unknown_incident, not_allowed, unknown_verb or bad_payload.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrUnknownIncident):
		return "unknown_incident"
	case errors.Is(err, ErrNotAllowed):
		return "not_allowed"
	case errors.Is(err, ErrUnknownVerb):
		return "unknown_verb"
	default:
		return "bad_payload"
	}
}
