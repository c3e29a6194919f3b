package devices

import (
	"fmt"
	"sync"
	"time"

	"github.com/hallguard/hallguard/devices/clock"
)

// Contact is how a switch is wired.
type Contact string

const (
	// NO (normally open): the contact closes, and the line goes High, when the
	// device activates.
	NO Contact = "NO"
	// NC (normally closed): the contact is closed (High) at rest and opens when
	// the device activates. A cut wire looks exactly like an activation; if
	// the loop stays open past StuckAfter it is also reported as FaultLoopOpen.
	NC Contact = "NC"
)

// ConditionSpec configures the conditioning of one input.
type ConditionSpec struct {
	ID      string
	Contact Contact
	// Debounce is the software debounce period; 0 turns it off (set it to 0
	// when the backend debounced in the kernel). Debouncing is leading-edge:
	// the first change is reported at once, later chatter is absorbed until
	// the line has been quiet for Debounce, so no delay is added to a press.
	Debounce time.Duration
	// StuckAfter raises FaultStuck (NO) or FaultLoopOpen (NC) when the input
	// stays active this long; 0 turns it off.
	StuckAfter time.Duration
	// Alarm marks a hold-up or manual fire input (panic, call point), where
	// a doubtful signal counts as an activation (§4.3, §4.4): an activation
	// hidden in a gap of lost edges is reported (Signal.Inferred), and a
	// line reopened active is reported active again, even if it was active
	// before it was lost. On other inputs lost edges are trouble only.
	Alarm bool
	// LostEdgesClear is how long the line must go without losing another
	// edge before FaultLostEdges clears; 0 means DefaultLostEdgesClear.
	LostEdgesClear time.Duration
}

// DefaultLostEdgesClear is ConditionSpec.LostEdgesClear's default.
const DefaultLostEdgesClear = time.Minute

// Signal is a conditioned change of an input: debounced, with the contact
// type applied.
type Signal struct {
	Input  string
	Active bool
	// Time is the time of the edge that caused the change.
	Time time.Time
	// Seq is the sequence number of that edge.
	Seq uint64
	// Inferred is set on an activation no edge showed: the edges around a
	// gap of Lost lost edges prove that the input was activated in it (a
	// pulse the backend missed). Only Alarm inputs report these.
	Inferred bool
	Lost     uint64
}

// FaultKind names a fault that conditioning or a backend detects.
type FaultKind string

// Faults. Stuck and LoopOpen are trouble and tamper signals respectively;
// LostEdges carries the Count of each loss and clears once the line has
// gone ConditionSpec.LostEdgesClear without another; LineLost comes from
// Watch failing.
const (
	FaultStuck     FaultKind = "stuck"
	FaultLoopOpen  FaultKind = "loop_open"
	FaultLostEdges FaultKind = "lost_edges"
	FaultLineLost  FaultKind = "line_lost"
)

// Fault is a change in an input's fault state.
type Fault struct {
	Input  string
	Kind   FaultKind
	Active bool
	Time   time.Time
	// Count is the number of lost edges, for FaultLostEdges.
	Count uint64
	// Detail is a human-readable cause, such as a backend error.
	Detail string
}

func (f Fault) String() string {
	s := fmt.Sprintf("%s %s active=%t", f.Input, f.Kind, f.Active)
	if f.Count > 0 {
		s += fmt.Sprintf(" count=%d", f.Count)
	}
	if f.Detail != "" {
		s += " (" + f.Detail + ")"
	}
	return s
}

// Handler receives the conditioner's output. Calls are serialised per
// Conditioner and made with its lock held, so they must not call back into it.
type Handler interface {
	Signal(Signal)
	Fault(Fault)
}

// Conditioner turns one input's raw edges into Signals and Faults.
// It is safe for concurrent use by the watch goroutine and clock timers.
type Conditioner struct {
	spec ConditionSpec
	clk  clock.Clock
	out  Handler

	mu       sync.Mutex
	started  bool
	raw      Level     // last raw level seen
	rawTime  time.Time // time of the last raw edge
	rawSeq   uint64
	reported bool // last reported active state
	lockout  clock.Timer
	// lockoutEnd is when the lockout's quiet period ends, in the edges'
	// time: the timer runs on the clock, which a starved process reads
	// late, and an edge that comes after lockoutEnd ends the lockout
	// first, as a timely timer would have.
	lockoutEnd time.Time
	// lockoutGen tells the current lockout's timer from one stopped too
	// late (fired, waiting for mu): only the current one may end it.
	lockoutGen uint64
	stuck      clock.Timer
	faulted    bool // stuck/loop-open fault raised
	lost       bool // lost_edges raised and not yet cleared
	lostQuiet  clock.Timer
}

// NewConditioner returns a conditioner that reports to out.
func NewConditioner(spec ConditionSpec, clk clock.Clock, out Handler) *Conditioner {
	if spec.Contact == "" {
		spec.Contact = NO
	}
	return &Conditioner{spec: spec, clk: clk, out: out}
}

// Active maps a logical level to the input's active state under its contact.
func (s ConditionSpec) Active(l Level) bool {
	if s.Contact == NC {
		return l == Low
	}
	return l == High
}

// Start sets the level read when the line was opened, and again each time
// it is reopened after a loss (its chip removed and back).
//
// At the first start an input already active is reported at once, so that
// a press held across a restart is not missed. At a reopen the level read
// is the truth, both ways: an input that was active and came back inactive
// is reported inactive, which clears its stuck or loop-open fault and, in
// the engine, a smoke pre-alarm the lost line left behind (§4.4: no fire,
// and no power cut, from a detector that is idle). An input that came back
// active is reported active if it was not; an Alarm input is reported
// active again even if it was (a reopened hold-up line is a doubtful
// signal, and counts as an alarm, §4.3).
func (c *Conditioner) Start(l Level, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	first := !c.started
	c.started = true
	if c.lockout != nil {
		c.lockout.Stop()
		c.lockout = nil
	}
	c.raw, c.rawTime = l, t
	a := c.spec.Active(l)
	switch {
	case first:
		c.reported = false
		if a {
			c.report(true, t, 0)
		}
	case a != c.reported, a && c.spec.Alarm:
		c.report(a, t, 0)
	case a && c.stuck == nil && !c.faulted && c.spec.StuckAfter > 0:
		// Still active, as before the loss: the stuck timer Stop cancelled
		// runs again.
		c.stuck = c.clk.AfterFunc(c.spec.StuckAfter, c.stuckFired)
	}
	if c.lost && c.lostQuiet == nil {
		c.lostQuiet = c.clk.AfterFunc(c.lostEdgesClear(), c.lostCleared)
	}
}

// Edge feeds one raw edge.
func (c *Conditioner) Edge(ev Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settle(ev.Time)
	wasActive := c.spec.Active(c.raw)
	c.started = true
	c.raw, c.rawTime, c.rawSeq = ev.Level, ev.Time, ev.Seq
	if ev.Lost > 0 {
		c.lostEdges(ev)
		if c.spec.Alarm && hiddenActivation(wasActive, c.spec.Active(ev.Level), ev.Lost) {
			// §4.3, §4.4: a pulse the backend missed on a hold-up or
			// call-point line is an alarm, reported as inferred.
			c.emit(Signal{Input: c.spec.ID, Active: true, Time: ev.Time, Seq: ev.Seq, Inferred: true, Lost: ev.Lost})
		}
	}
	if c.spec.Debounce <= 0 {
		if a := c.spec.Active(ev.Level); a != c.reported {
			c.report(a, ev.Time, ev.Seq)
		}
		return
	}
	if c.lockout != nil {
		// Still bouncing: restart the quiet period.
		c.lock(ev.Time.Add(c.spec.Debounce))
		return
	}
	if a := c.spec.Active(ev.Level); a != c.reported {
		c.report(a, ev.Time, ev.Seq)
		c.lock(ev.Time.Add(c.spec.Debounce))
	}
}

// lock (re)starts the lockout: its quiet period ends at end in the edges'
// time, and its timer fires a debounce period from now on the clock.
func (c *Conditioner) lock(end time.Time) {
	if c.lockout != nil {
		c.lockout.Stop()
	}
	c.lockoutGen++
	gen := c.lockoutGen
	c.lockout = c.clk.AfterFunc(c.spec.Debounce, func() { c.quiet(gen) })
	c.lockoutEnd = end
}

// settle ends, before an edge at t is taken, every lockout whose quiet
// period the edges' own times show was over by then. On a loaded machine
// the lockout's timer can run long after its period: without this, a
// release inside the lockout and a new press well after it would both be
// taken for bounce and the press lost (§4.3: a hold-up press must not be).
// An edge without a time (zero) settles nothing.
func (c *Conditioner) settle(t time.Time) {
	for c.lockout != nil && !t.Before(c.lockoutEnd) {
		c.endLockout()
	}
}

// hiddenActivation reports whether lost edges between a raw level that was
// active (or not) and an edge to a level that is active (or not) must have
// held an activation that no edge showed. Edges alternate, so a gap that
// ends where it started hid a pulse (an activation and its end, or an end
// and a re-activation), and two or more lost before a visible release hid
// a re-activation. One lost edge before a change is the change itself, not
// yet seen (a level found by a read).
func hiddenActivation(wasActive, isActive bool, lost uint64) bool {
	return wasActive == isActive || (wasActive && !isActive && lost >= 2)
}

// lostEdges raises FaultLostEdges for ev's gap and (re)starts the wait
// after which it clears.
func (c *Conditioner) lostEdges(ev Event) {
	c.lost = true
	c.out.Fault(Fault{Input: c.spec.ID, Kind: FaultLostEdges, Active: true, Time: ev.Time, Count: ev.Lost})
	if c.lostQuiet != nil {
		c.lostQuiet.Stop()
	}
	c.lostQuiet = c.clk.AfterFunc(c.lostEdgesClear(), c.lostCleared)
}

func (c *Conditioner) lostEdgesClear() time.Duration {
	if c.spec.LostEdgesClear > 0 {
		return c.spec.LostEdgesClear
	}
	return DefaultLostEdgesClear
}

// lostCleared runs when the line has gone LostEdgesClear without a loss.
func (c *Conditioner) lostCleared() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lostQuiet = nil
	if !c.lost {
		return
	}
	c.lost = false
	c.out.Fault(Fault{Input: c.spec.ID, Kind: FaultLostEdges, Active: false, Time: c.clk.Now(),
		Detail: fmt.Sprintf("no edge lost for %s", c.lostEdgesClear())})
}

// quiet runs when the line has been stable for the debounce period, unless
// the lockout it was started for has since been restarted or ended.
func (c *Conditioner) quiet(gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lockout == nil || gen != c.lockoutGen {
		return
	}
	c.endLockout()
}

// endLockout ends the lockout: the raw level, stable for the whole quiet
// period, is reported if it differs, and starts a lockout of its own.
func (c *Conditioner) endLockout() {
	c.lockout.Stop()
	c.lockout = nil
	if a := c.spec.Active(c.raw); a != c.reported {
		c.report(a, c.rawTime, c.rawSeq)
		c.lock(c.lockoutEnd.Add(c.spec.Debounce))
	}
}

func (c *Conditioner) report(active bool, t time.Time, seq uint64) {
	c.emit(Signal{Input: c.spec.ID, Active: active, Time: t, Seq: seq})
}

// emit reports s and keeps the stuck timer and fault in step with it.
func (c *Conditioner) emit(s Signal) {
	active, t := s.Active, s.Time
	c.reported = active
	c.out.Signal(s)
	if c.stuck != nil {
		c.stuck.Stop()
		c.stuck = nil
	}
	if active && c.spec.StuckAfter > 0 {
		c.stuck = c.clk.AfterFunc(c.spec.StuckAfter, c.stuckFired)
	}
	if !active && c.faulted {
		c.faulted = false
		c.out.Fault(Fault{Input: c.spec.ID, Kind: c.stuckKind(), Active: false, Time: t})
	}
}

func (c *Conditioner) stuckKind() FaultKind {
	if c.spec.Contact == NC {
		return FaultLoopOpen
	}
	return FaultStuck
}

func (c *Conditioner) stuckFired() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stuck = nil
	if !c.reported || c.faulted {
		return
	}
	c.faulted = true
	c.out.Fault(Fault{Input: c.spec.ID, Kind: c.stuckKind(), Active: true, Time: c.clk.Now(),
		Detail: fmt.Sprintf("active for %s", c.spec.StuckAfter)})
}

// Stop cancels pending timers. The line can be started again (Start) when
// it is reopened; what was reported stays known until then.
func (c *Conditioner) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range []clock.Timer{c.lockout, c.stuck, c.lostQuiet} {
		if t != nil {
			t.Stop()
		}
	}
	c.lockout, c.stuck, c.lostQuiet = nil, nil, nil
}
