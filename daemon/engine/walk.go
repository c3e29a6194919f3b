package engine

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/devices/clock"
)

// Walk-test actions of VerbDrill.
const (
	WalkStart = "walk_start"
	WalkStop  = "walk_stop"
)

// WalkMax ends a walk test that nobody stopped: the inputs it covers raise
// no alarm of their own, so the mode must never be left on.
const WalkMax = 30 * time.Minute

// WalkSink receives walk-test records (Sinks.Walk). Like Sink's methods,
// WalkTest is called with the engine's lock held.
type WalkSink interface {
	WalkTest(WalkRecord)
}

// WalkRecord is the result of a walk test: each covered input pressed once
// proves its wiring; the covered ones not seen are listed as untested.
type WalkRecord struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"` // "walk_test"
	Hall      string    `json:"hall"`
	StartedBy string    `json:"started_by"`
	StartedAt time.Time `json:"started_at"`
	EndedBy   string    `json:"ended_by"`
	EndedAt   time.Time `json:"ended_at"`
	// Named are the inputs and zones the walk test was started with;
	// Covers the input ids they name. Every other input stayed live.
	Named    []string    `json:"named"`
	Covers   []string    `json:"covers"`
	Inputs   []WalkInput `json:"inputs"`
	Tested   []string    `json:"tested"`
	Untested []string    `json:"untested"`
	// StillActive are the covered inputs still active when the walk test
	// ended: each was evaluated again and raised its playbook.
	StillActive []string `json:"still_active"`
	// HoldUp is the test incident that reported the hold-up presses to the
	// center (test: true), "" when there were none.
	HoldUp string `json:"hold_up"`
}

// WalkInput is one covered input's walk-test result; TestedAt is null when
// it was not seen.
type WalkInput struct {
	ID       string     `json:"id"`
	Kind     string     `json:"kind"`
	TestedAt *time.Time `json:"tested_at"`
}

type walkRun struct {
	rec    WalkRecord
	covers map[string]bool
	seen   map[string]time.Time
	timer  clock.Timer
	holdUp *Incident // the test incident of hold-up presses, nil until one
}

// walkCovers resolves the names a walk test is started with, input ids or
// zones, to the input ids they cover.
func (e *Engine) walkCovers(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: a walk test names the inputs or zones it covers (everything else stays live)", ErrBadCommand)
	}
	set := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		found := false
		for _, in := range e.cfg.Inputs {
			if in.ID == n || (in.Zone != "" && in.Zone == n) {
				set[in.ID], found = true, true
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: no input or zone %q", ErrBadCommand, n)
		}
	}
	var out []string
	for _, in := range e.cfg.Inputs { // config order
		if set[in.ID] {
			out = append(out, in.ID)
		}
	}
	return out, nil
}

// walkSignal takes an activation of an input the walk test covers: it
// proves the input and raises no alarm of its own, except that a hold-up
// (panic) press is never silently suppressed: the center gets a report
// flagged test: true on its normal alerts topic, every press.
func (e *Engine) walkSignal(s *inputState, at time.Time) {
	w := e.walk
	if _, ok := w.seen[s.cfg.ID]; !ok {
		w.seen[s.cfg.ID] = at
	}
	if s.cfg.Kind == config.KindPanic {
		e.walkHoldUp(w, s.cfg, at)
	}
}

// walkHoldUp reports a hold-up press during a walk test to the center, as
// a test incident: same playbook, variant and alerts topic as a robbery,
// test: true, no output and no escalation (§4.3: nothing in the hall).
func (e *Engine) walkHoldUp(w *walkRun, in *config.Input, at time.Time) {
	pb := e.cfg.Playbook("robbery")
	if pb == nil {
		return
	}
	if inc := w.holdUp; inc != nil && inc.open() {
		inc.press(pb, in)
		inc.measure(Measure{At: at, Kind: "note", By: "hallguard",
			Text: fmt.Sprintf("walk test %s: hold-up input %s (%s) pressed, press %d", w.rec.ID, in.ID, in.Variant, inc.Presses)})
		e.report(inc, EventUpdate, nil, at)
		return
	}
	w.holdUp = e.raise(raising{pb: pb, variant: in.Variant, origin: OriginButton, source: in.ID, test: true, at: at, trigger: at,
		why: fmt.Sprintf("walk test %s by %s: hold-up input %s pressed (test: a real hold-up looks the same)", w.rec.ID, w.rec.StartedBy, in.ID)})
	w.rec.HoldUp = w.holdUp.ID
}

func (e *Engine) walkCmd(c Command) (string, error) {
	now := e.clk.Now()
	switch c.Action {
	case WalkStart:
		if e.walk != nil {
			return e.walk.rec.ID, fmt.Errorf("%w: walk test %s is running", ErrNotAllowed, e.walk.rec.ID)
		}
		if !c.Authenticated {
			// An unauthenticated walk test would let anyone on the network
			// take inputs out of service (commands.auth: none).
			return "", fmt.Errorf("%w: a walk test is started only by an authenticated command (commands.auth: hmac)", ErrNotAllowed)
		}
		covers, err := e.walkCovers(c.Inputs)
		if err != nil {
			return "", err
		}
		for _, inc := range e.incidents {
			if inc.real() && inc.open() {
				return inc.ID, fmt.Errorf("%w: real incident %s (%s) is open", ErrNotAllowed, inc.ID, inc.Playbook)
			}
		}
		w := &walkRun{seen: map[string]time.Time{}, covers: map[string]bool{}, rec: WalkRecord{ID: "walk-" + e.ids(now), Kind: "walk_test",
			Hall: e.cfg.Hall.ID, StartedBy: c.By, StartedAt: now.UTC(), Named: slices.Clone(c.Inputs), Covers: covers}}
		for _, id := range covers {
			w.covers[id] = true
		}
		e.walk = w
		w.timer = e.after(WalkMax, func() {
			if e.walk == w {
				e.endWalk("hallguard")
			}
		})
		// The center must know which inputs raise no alarm of their own.
		e.sink.Condition(Condition{Class: ClassSupervisory, Kind: "walk_test", Active: true, Time: now, Count: uint64(len(covers)),
			Detail: fmt.Sprintf("walk test %s by %s covers %s until it ends (at most %s); hold-up presses are reported as test; every other input is live",
				w.rec.ID, c.By, strings.Join(covers, ", "), WalkMax)})
		return w.rec.ID, nil
	case WalkStop:
		if e.walk == nil {
			return "", fmt.Errorf("%w: no walk test is running", ErrNotAllowed)
		}
		id := e.walk.rec.ID
		e.endWalk(c.By)
		return id, nil
	}
	return "", fmt.Errorf("%w: unknown drill action %q", ErrBadCommand, c.Action)
}

// endWalk ends the walk test (walk_stop or WalkMax). Every covered input
// still active is evaluated again and raises its playbook: a call point
// left broken or a panic button left latched during the test is an alarm
// (a doubtful signal on an alarm input counts as an alarm).
func (e *Engine) endWalk(by string) {
	w := e.walk
	e.walk = nil
	w.timer.Stop()
	now := e.clk.Now()
	r := w.rec
	r.EndedBy, r.EndedAt = by, now.UTC()
	r.Tested, r.Untested, r.StillActive = []string{}, []string{}, []string{}
	for _, in := range e.cfg.Inputs {
		if !w.covers[in.ID] {
			continue
		}
		wi := WalkInput{ID: in.ID, Kind: in.Kind}
		if at, ok := w.seen[in.ID]; ok {
			wi.TestedAt = utc(at)
			r.Tested = append(r.Tested, in.ID)
		} else {
			r.Untested = append(r.Untested, in.ID)
		}
		r.Inputs = append(r.Inputs, wi)
	}
	if inc := w.holdUp; inc != nil && inc.open() {
		e.close(inc, EventResolved, "hallguard", fmt.Sprintf("walk test %s ended", r.ID))
	}
	for _, id := range r.Covers {
		s := e.inputs[id]
		if s == nil || !s.active {
			continue
		}
		r.StillActive = append(r.StillActive, id)
		e.activate(s, now, fmt.Sprintf("%s still active when walk test %s ended", id, r.ID))
		e.publishInput(s)
	}
	detail := fmt.Sprintf("walk test %s ended: %d of %d covered inputs tested", r.ID, len(r.Tested), len(r.Covers))
	if len(r.StillActive) > 0 {
		detail += "; still active, alarm raised: " + strings.Join(r.StillActive, ", ")
	}
	e.sink.Condition(Condition{Class: ClassSupervisory, Kind: "walk_test", Active: false, Time: now, Detail: detail})
	if e.sink.Walk != nil {
		e.sink.Walk.WalkTest(r)
	}
}

// testInput carries out VerbTest.
func (e *Engine) testInput(c Command) (string, error) {
	s := e.inputs[c.Input]
	if s == nil {
		return "", fmt.Errorf("%w: no input %q", ErrBadCommand, c.Input)
	}
	var pb *config.Playbook
	variant := ""
	switch s.cfg.Kind {
	case config.KindPanic:
		pb, variant = e.cfg.Playbook("robbery"), s.cfg.Variant
	case config.KindSmoke, config.KindCallpoint:
		pb = e.cfg.Playbook("fire")
	case config.KindGeneric:
		pb = e.cfg.Playbook(s.cfg.Playbook)
	case config.KindCounter:
		pb = e.cfg.Playbook("surge")
	}
	if pb == nil {
		return "", fmt.Errorf("%w: input %s (%s) raises no playbook", ErrBadCommand, s.cfg.ID, s.cfg.Kind)
	}
	who := slices.DeleteFunc(append([]string{c.By}, c.Participants...), func(p string) bool { return strings.TrimSpace(p) == "" })
	d := c
	d.Verb, d.Action, d.Playbook, d.Variant, d.Participants = VerbDrill, DrillStart, pb.ID, variant, who
	return e.startDrill(d)
}
