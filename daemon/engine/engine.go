package engine

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/clock"
)

// Engine runs the playbooks. Create it with New.
type Engine struct {
	cfg  *config.Config
	clk  clock.Clock
	sink Sinks
	ids  func(t time.Time) string

	mu        sync.Mutex
	seq       uint64
	incidents map[string]*Incident
	order     []string // ids of incidents, sorted (memory.go)
	inputs    map[string]*inputState
	smoke     *smokeDetector
	queue     *queueModel
	outputs   map[string]bool // output id -> currently driven active
	closed    bool

	// Drills (§1.3): the one running, the records made, when each
	// playbook was last drilled, and the overdue check.
	running    *drillRun
	drillRecs  map[string]*DrillRecord
	lastDrill  map[string]time.Time
	drillSince time.Time
	overdue    string
	drillTick  clock.Timer
	walk       *walkRun

	// Reviews (§3.4): incidents earlier runs closed, and the overdue
	// condition's last detail.
	closedPast  map[string]*ClosedIncident
	awaiting    []*ClosedIncident // those in closedPast that wait for their review, by id
	reviewsDue  string
	reviewsDueN int

	// The business-system probe's incident (§4.2) and when it went down.
	probeInc  *Incident
	probeDown time.Time
}

// Option configures an Engine.
type Option func(*Engine)

// WithClock sets the clock (default clock.Real).
func WithClock(c clock.Clock) Option { return func(e *Engine) { e.clk = c } }

// WithIDs sets the incident id generator (default: time-sortable with a
// random suffix).
func WithIDs(f func(time.Time) string) Option { return func(e *Engine) { e.ids = f } }

// New returns an engine for cfg (which must have its playbooks loaded)
// that sends its effects to sinks.
func New(cfg *config.Config, sinks Sinks, opts ...Option) *Engine {
	e := &Engine{
		cfg:       cfg,
		clk:       clock.Real{},
		sink:      sinks,
		ids:       defaultID,
		incidents: map[string]*Incident{},
		inputs:    map[string]*inputState{},
		outputs:   map[string]bool{},
		drillRecs: map[string]*DrillRecord{},
		lastDrill: map[string]time.Time{},

		closedPast: map[string]*ClosedIncident{},
	}
	for _, o := range opts {
		o(e)
	}
	for i := range cfg.Inputs {
		in := &cfg.Inputs[i]
		e.inputs[in.ID] = &inputState{cfg: in, faults: map[string]bool{}}
	}
	e.smoke = newSmokeDetector(e)
	e.queue = newQueueModel(e)
	return e
}

func defaultID(t time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format("20060102T150405.000Z") + "-" + hex.EncodeToString(b[:])
}

// Start publishes the initial input and queue states and arms the daily
// queue reset. Call it once the inputs are open.
func (e *Engine) Start() {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clk.Now()
	for _, id := range slices.Sorted(maps.Keys(e.inputs)) {
		if s := e.inputs[id]; s.since.IsZero() {
			s.since = now
		}
		e.publishInput(e.inputs[id])
	}
	e.queue.start()
	e.startDrillChecks()
}

// Close stops every timer. Outputs are returned to their fail-safe level by
// the devices layer, not here.
func (e *Engine) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	for _, inc := range e.incidents {
		inc.stopTimers()
	}
	e.smoke.stop()
	e.queue.stop()
	if e.running != nil && e.running.timer != nil {
		e.running.timer.Stop()
	}
	if e.drillTick != nil {
		e.drillTick.Stop()
	}
	if e.walk != nil {
		e.walk.timer.Stop()
	}
}

// Ping takes and releases the engine's lock: the watchdog calls it to prove
// the engine is not stuck.
func (e *Engine) Ping() {
	e.mu.Lock()
	//lint:ignore SA2001 the lock round-trip is the point
	e.mu.Unlock()
}

// Reconfigure switches the engine to cfg, which must have the same inputs
// and outputs (the daemon refuses a reload that changes lines). Playbooks,
// roles, smoke verification and queue thresholds take effect at once for
// what comes next; open incidents keep the playbook they were raised with.
func (e *Engine) Reconfigure(cfg *config.Config) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cfg = cfg
	for i := range cfg.Inputs {
		if s := e.inputs[cfg.Inputs[i].ID]; s != nil {
			s.cfg = &cfg.Inputs[i]
		}
	}
	e.queue.q = cfg.Queue
	e.queue.evaluate()
}

// Hold takes the engine's lock and keeps it until release is called, as a
// hung engine would. It is for the watchdog's tests and for diagnostics;
// nothing in normal operation calls it.
func (e *Engine) Hold() (release func()) {
	e.mu.Lock()
	return e.mu.Unlock
}

// after schedules f under the engine's lock.
func (e *Engine) after(d time.Duration, f func()) clock.Timer {
	return e.clk.AfterFunc(d, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if !e.closed {
			f()
		}
	})
}

type inputState struct {
	cfg    *config.Input
	active bool
	since  time.Time
	state  string
	faults map[string]bool
	edges  uint64
	lost   uint64
}

func (e *Engine) publishInput(s *inputState) {
	st := InputState{ID: s.cfg.ID, Kind: s.cfg.Kind, Active: s.active, Since: s.since, Edges: s.edges, LostEdges: s.lost}
	switch {
	case s.state != "":
		st.State = s.state
	case s.active:
		st.State = "active"
	default:
		st.State = "idle"
	}
	for f, on := range s.faults {
		if on {
			st.Faults = append(st.Faults, f)
		}
	}
	sort.Strings(st.Faults)
	if len(st.Faults) > 0 && st.State == "idle" {
		st.State = "fault"
	}
	e.sink.Input(st)
}

// Signal feeds one conditioned input change.
func (e *Engine) Signal(sg devices.Signal) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.inputs[sg.Input]
	if s == nil || e.closed {
		return
	}
	s.edges++
	s.active = sg.Active
	s.since = sg.Time
	s.state = ""
	if sg.Active && e.walk != nil && e.walk.covers[s.cfg.ID] {
		// Walk test (§1.3): the activation proves the wiring; a hold-up
		// press is reported to the center as a test. Inputs it does not
		// cover stay live. It swallows alarms, not their end: a pre-alarm
		// or tamper that clears is cleared below.
		e.walkSignal(s, sg.Time)
		e.publishInput(s)
		return
	}
	switch s.cfg.Kind {
	case config.KindSmoke:
		e.smoke.signal(s, sg)
	case config.KindCounter:
		if sg.Active {
			e.queue.pulse(s.cfg.Direction, sg.Time)
		}
	case config.KindTamper:
		e.sink.Condition(Condition{Class: ClassTamper, Kind: "tamper", Input: s.cfg.ID, Active: sg.Active, Time: sg.Time})
	default:
		if sg.Active {
			e.activate(s, sg.Time, "", lostNote(sg)...)
		}
	}
	e.publishInput(s)
}

// activate raises what an active input raises: its playbook, or its
// verification (smoke), or its tamper condition. why, when given, says why
// the input is evaluated now (a walk test that ended while it was active);
// notes go into the incident's measures (lostNote: an activation inferred
// from lost edges).
func (e *Engine) activate(s *inputState, at time.Time, why string, notes ...Measure) {
	switch s.cfg.Kind {
	case config.KindPanic:
		e.panicPressed(s.cfg, at, why, notes...)
	case config.KindCallpoint:
		if why == "" {
			why = "manual call point"
		}
		e.raiseFire(raising{origin: OriginButton, source: s.cfg.ID, at: at, trigger: at, why: why, notes: notes})
	case config.KindSmoke:
		e.smoke.signal(s, devices.Signal{Input: s.cfg.ID, Active: true, Time: at})
	case config.KindTamper:
		e.sink.Condition(Condition{Class: ClassTamper, Kind: "tamper", Input: s.cfg.ID, Active: true, Time: at, Detail: why})
	case config.KindGeneric:
		if s.cfg.Playbook == "" {
			return
		}
		if pb := e.cfg.Playbook(s.cfg.Playbook); pb != nil {
			if inc := e.openIncident(pb.ID, false); inc != nil {
				e.join(inc, at, s.cfg.ID)
			} else {
				e.raise(raising{pb: pb, origin: OriginStaff, source: s.cfg.ID, at: at, trigger: at, why: why})
			}
		}
	}
}

// Fault feeds one fault change from conditioning or a backend.
func (e *Engine) Fault(f devices.Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.inputs[f.Input]
	if s == nil || e.closed {
		return
	}
	c := Condition{Kind: string(f.Kind), Input: f.Input, Active: f.Active, Time: f.Time, Detail: f.Detail, Count: f.Count}
	switch f.Kind {
	case devices.FaultLoopOpen:
		c.Class = ClassTamper
	default:
		c.Class = ClassTrouble
	}
	if f.Kind == devices.FaultLostEdges {
		// Raised with each loss's count; cleared by conditioning once the
		// line has behaved for a while.
		if f.Active {
			s.lost += f.Count
		}
	} else {
		s.faults[string(f.Kind)] = f.Active
	}
	e.sink.Condition(c)
	e.publishInput(s)
}

// lostNote is the measure saying that sg's activation was inferred from
// lost edges (§3.2: the report says truthfully how the alarm was known),
// or nothing for an activation an edge showed.
func lostNote(sg devices.Signal) []Measure {
	if !sg.Inferred {
		return nil
	}
	return []Measure{{At: sg.Time, Kind: "note", By: "hallguard",
		Text: fmt.Sprintf("%s: activation inferred from lost edges (%d edges lost; a doubtful signal on an alarm input counts as an alarm)", sg.Input, sg.Lost)}}
}

// panicPressed handles §4.3: raise robbery at once, or add to the open one.
// notes go into the incident's measures (lostNote).
func (e *Engine) panicPressed(in *config.Input, at time.Time, why string, notes ...Measure) {
	pb := e.cfg.Playbook("robbery")
	if pb == nil {
		return
	}
	if inc := e.openIncident("robbery", false); inc != nil {
		// §4.3: one incident. A further press of a button already in it is
		// counted; a new button or a new variant joins it with an update
		// report, acknowledged or not (§3.2: the center learns of it).
		newInput, newVariant := inc.press(pb, in)
		for _, m := range notes {
			inc.measure(m)
		}
		if !newInput && !newVariant {
			return
		}
		m := Measure{At: at, Kind: "note", By: "hallguard", Text: in.ID + " pressed: joins the robbery"}
		if newVariant {
			v := pb.Variant(in.Variant)
			m.Text = fmt.Sprintf("%s pressed: variant %s joins the robbery", in.ID, in.Variant)
			if v != nil {
				m.Section = v.Section
			}
		}
		inc.measure(m)
		e.report(inc, EventUpdate, nil, at)
		return
	}
	e.raise(raising{pb: pb, variant: in.Variant, origin: OriginButton, source: in.ID, at: at, trigger: at, why: why, notes: notes})
}

// raiseFire handles §4.4: raise fire (rq without its playbook), or add
// its source and inputs, and its notes, to the open one.
func (e *Engine) raiseFire(rq raising) {
	pb := e.cfg.Playbook("fire")
	if pb == nil {
		return
	}
	if inc := e.openIncident("fire", false); inc != nil {
		for _, m := range rq.notes {
			inc.measure(m)
		}
		e.join(inc, rq.at, append([]string{rq.source}, rq.inputs...)...)
		return
	}
	rq.pb = pb
	e.raise(rq)
}

// join adds inputs to an open incident. Any that is new to it is reported
// in an update (§3.2), whether the incident is acknowledged or not.
func (e *Engine) join(inc *Incident, at time.Time, ids ...string) {
	var added []string
	for _, id := range ids {
		if e.inputs[id] != nil && inc.addInput(id) {
			added = append(added, id)
		}
	}
	if len(added) == 0 {
		return
	}
	inc.measure(Measure{At: at, Kind: "note", By: "hallguard", Text: strings.Join(added, ", ") + " active: joins the " + inc.Playbook})
	e.report(inc, EventUpdate, nil, at)
}

// openIncident returns the unresolved incident of a playbook, or nil.
func (e *Engine) openIncident(playbook string, drill bool) *Incident {
	for _, inc := range e.incidents {
		if inc.Playbook == playbook && inc.Drill == drill && !inc.Test && inc.open() {
			return inc
		}
	}
	return nil
}

// Incidents returns copies of every incident the engine holds, oldest
// first: the open ones and the resolved ones still in memory (at most
// incidents.max_resolved; see memory.go). IncidentPage pages them.
func (e *Engine) Incidents() []Incident {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Incident, 0, len(e.order))
	for _, id := range e.order {
		out = append(out, e.incidents[id].copy())
	}
	return out
}

// Incident returns a copy of one incident.
func (e *Engine) Incident(id string) (Incident, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	inc, ok := e.incidents[id]
	if !ok {
		return Incident{}, false
	}
	return inc.copy(), true
}

// Queue returns the queue model's state.
func (e *Engine) Queue() QueueState {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.queue.state()
}
