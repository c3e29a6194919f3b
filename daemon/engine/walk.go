package engine

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/devices/clock"
)

// VerbTest fires one input's test path: its playbook is raised as a drill
// from that input (Command.Input), as if it had been pressed, with
// drill: true on every message and no live_only output (§1.3).
const VerbTest = "test"

// Walk-test actions of VerbDrill.
const (
	WalkStart = "walk_start"
	WalkStop  = "walk_stop"
)

// WalkMax ends a walk test that nobody stopped: inputs in walk test raise
// no alarm, so the mode must never be left on.
const WalkMax = 30 * time.Minute

// WalkSink is the optional part of a Sink that receives walk-test
// records. Like Sink's methods, WalkTest is called with the engine's lock
// held.
type WalkSink interface {
	WalkTest(WalkRecord)
}

// WalkRecord is the result of a walk test: each input pressed once proves
// its wiring; the ones not seen are listed as untested.
type WalkRecord struct {
	ID        string      `json:"id"`
	Kind      string      `json:"kind"` // "walk_test"
	Hall      string      `json:"hall"`
	StartedBy string      `json:"started_by"`
	StartedAt time.Time   `json:"started_at"`
	EndedBy   string      `json:"ended_by"`
	EndedAt   time.Time   `json:"ended_at"`
	Inputs    []WalkInput `json:"inputs"`
	Tested    []string    `json:"tested"`
	Untested  []string    `json:"untested"`
}

// WalkInput is one input's walk-test result; TestedAt is null when it was
// not seen.
type WalkInput struct {
	ID       string     `json:"id"`
	Kind     string     `json:"kind"`
	TestedAt *time.Time `json:"tested_at"`
}

type walkRun struct {
	rec   WalkRecord
	seen  map[string]time.Time
	timer clock.Timer
}

// walkSignal takes an input change during a walk test: an activation
// proves the input; nothing is raised and no output acts.
func (e *Engine) walkSignal(s *inputState, active bool, at time.Time) {
	if _, ok := e.walk.seen[s.cfg.ID]; !ok && active {
		e.walk.seen[s.cfg.ID] = at
	}
}

func (e *Engine) walkCmd(c Command) (string, error) {
	now := e.clk.Now()
	switch c.Action {
	case WalkStart:
		if e.walk != nil {
			return e.walk.rec.ID, fmt.Errorf("%w: walk test %s is running", ErrNotAllowed, e.walk.rec.ID)
		}
		for _, inc := range e.incidents {
			if !inc.Drill && inc.open() {
				return inc.ID, fmt.Errorf("%w: real incident %s (%s) is open", ErrNotAllowed, inc.ID, inc.Playbook)
			}
		}
		w := &walkRun{seen: map[string]time.Time{}, rec: WalkRecord{ID: "walk-" + e.ids(now), Kind: "walk_test",
			Hall: e.cfg.Hall.ID, StartedBy: c.By, StartedAt: now.UTC()}}
		e.walk = w
		w.timer = e.after(WalkMax, func() {
			if e.walk == w {
				e.endWalk("hallguard")
			}
		})
		// The center must know that alarms from the inputs are not raised.
		e.sink.Condition(Condition{Class: ClassSupervisory, Kind: "walk_test", Active: true, Time: now,
			Detail: fmt.Sprintf("walk test %s by %s: inputs raise no alarm until it ends (at most %s)", w.rec.ID, c.By, WalkMax)})
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

func (e *Engine) endWalk(by string) {
	w := e.walk
	e.walk = nil
	w.timer.Stop()
	now := e.clk.Now()
	r := w.rec
	r.EndedBy, r.EndedAt = by, now.UTC()
	r.Tested, r.Untested = []string{}, []string{}
	for _, in := range e.cfg.Inputs {
		wi := WalkInput{ID: in.ID, Kind: in.Kind}
		if at, ok := w.seen[in.ID]; ok {
			wi.TestedAt = utc(at)
			r.Tested = append(r.Tested, in.ID)
		} else {
			r.Untested = append(r.Untested, in.ID)
		}
		r.Inputs = append(r.Inputs, wi)
	}
	e.sink.Condition(Condition{Class: ClassSupervisory, Kind: "walk_test", Active: false, Time: now,
		Detail: fmt.Sprintf("walk test %s ended: %d of %d inputs tested", r.ID, len(r.Tested), len(r.Inputs))})
	if ws, ok := e.sink.(WalkSink); ok {
		ws.WalkTest(r)
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
