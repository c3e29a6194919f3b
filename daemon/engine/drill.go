package engine

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hallguard/hallguard/devices/clock"
)

// Drill actions.
const (
	DrillStart    = "start"
	DrillStop     = "stop"
	DrillEvaluate = "evaluate"
)

// Drill outcomes.
const (
	DrillCompleted = "completed" // stopped by staff, or its incident resolved
	DrillTimedOut  = "timed_out" // ended by the playbook's drill.max_duration
	DrillAborted   = "aborted"   // a real alarm took priority
)

// DrillSink receives drill records (Sinks.Drill); without one, the engine
// keeps no drill records. Like Sink's methods, Drill is called with the
// engine's lock held.
type DrillSink interface {
	// Drill is a drill record (§1.3): at the end of a drill, and again
	// each time an evaluation comment is added.
	Drill(DrillRecord)
}

// DrillRecord is the §1.3 record of one drill: when, what (playbook,
// variant, steps), who took part, and how it went, measured. Its ID is the
// drill's incident id. It is the JSON published on drills/<id> and
// journalled as kind "drill".
type DrillRecord struct {
	ID           string    `json:"id"`
	Hall         string    `json:"hall"`
	Drill        bool      `json:"drill"` // always true
	Playbook     string    `json:"playbook"`
	Section      string    `json:"section"`
	Variant      string    `json:"variant"`
	TypeZH       string    `json:"type_zh"`
	Type         string    `json:"type"`
	Participants []string  `json:"participants"`
	StartedBy    string    `json:"started_by"`
	StartedAt    time.Time `json:"started_at"`
	EndedBy      string    `json:"ended_by"`
	EndedAt      time.Time `json:"ended_at"`
	// Outcome is completed, timed_out or aborted; AbortedBy is the real
	// incident that aborted it.
	Outcome   string `json:"outcome"`
	AbortedBy string `json:"aborted_by"`
	// RealIncidents are the real incidents raised during the drill, by
	// id: one that did not end it (a silent robbery, §4.3) and the one
	// that aborted it; [] when none.
	RealIncidents   []string `json:"real_incidents"`
	DurationSeconds float64  `json:"duration_seconds"`
	AcknowledgedBy  string   `json:"acknowledged_by"`
	AckSeconds      *float64 `json:"time_to_acknowledge_seconds"`
	// Steps gives each step's time from the start; Completed and Missed
	// list step ids.
	Steps     []TimelineStep `json:"steps"`
	Completed []string       `json:"steps_completed"`
	Missed    []string       `json:"steps_missed"`
	Comments  []DrillComment `json:"comments"`
}

// DrillComment is a free-text evaluation added after the drill.
type DrillComment struct {
	At   time.Time `json:"at"`
	By   string    `json:"by"`
	Text string    `json:"text"`
}

// DrillHistory seeds the engine with what earlier runs recorded, so that
// overdue drills and evaluations survive restarts.
type DrillHistory struct {
	// Since is when this hall's record starts (the journal's first
	// record): a playbook never drilled is overdue its interval after it.
	Since time.Time
	// Records are earlier drill records, in journal order (a later record
	// of the same id replaces an earlier one).
	Records []DrillRecord
}

// WithDrillHistory seeds last drill times and records from the journal.
func WithDrillHistory(h DrillHistory) Option {
	return func(e *Engine) {
		e.drillSince = h.Since
		for i := range h.Records {
			r := h.Records[i]
			e.drillRecs[r.ID] = &r
			if r.Outcome != DrillAborted && r.EndedAt.After(e.lastDrill[r.Playbook]) {
				e.lastDrill[r.Playbook] = r.EndedAt
			}
		}
	}
}

// drillRun is the drill in progress.
type drillRun struct {
	rec   *DrillRecord
	inc   *Incident
	timer clock.Timer
}

// drillCmd carries out the drill verb.
func (e *Engine) drillCmd(c Command) (string, error) {
	switch c.Action {
	case DrillStart:
		return e.startDrill(c)
	case DrillStop:
		d := e.running
		if d == nil {
			return "", fmt.Errorf("%w: no drill is running", ErrNotAllowed)
		}
		if id := cmp(c.Drill, c.Incident); id != "" && id != d.rec.ID {
			return id, fmt.Errorf("%w: drill %s is not running (%s is)", ErrNotAllowed, id, d.rec.ID)
		}
		e.endDrill(d, DrillCompleted, c.By, "drill stopped", "")
		return d.rec.ID, nil
	case DrillEvaluate:
		id := cmp(c.Drill, c.Incident)
		r := e.drillRecs[id]
		if r == nil {
			if e.running != nil && e.running.rec.ID == id {
				return id, fmt.Errorf("%w: drill %s is still running", ErrNotAllowed, id)
			}
			return id, fmt.Errorf("%w: no drill record %q", ErrUnknownIncident, id)
		}
		if strings.TrimSpace(c.Reason) == "" {
			return id, fmt.Errorf("%w: an evaluation needs a comment", ErrBadCommand)
		}
		r.Comments = append(r.Comments, DrillComment{At: e.clk.Now().UTC(), By: c.By, Text: c.Reason})
		e.emitDrill(r)
		return id, nil
	case WalkStart, WalkStop:
		return e.walkCmd(c)
	}
	return "", fmt.Errorf("%w: drill action must be start, stop, evaluate, walk_start or walk_stop, not %q", ErrBadCommand, c.Action)
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (e *Engine) startDrill(c Command) (string, error) {
	pb := e.cfg.Playbook(c.Playbook)
	if pb == nil {
		return "", fmt.Errorf("%w: no playbook %q", ErrBadCommand, c.Playbook)
	}
	if err := checkVariant(pb, c.Variant); err != nil {
		return "", err
	}
	var who []string
	for _, p := range c.Participants {
		if p = strings.TrimSpace(p); p != "" {
			who = append(who, p)
		}
	}
	if len(who) == 0 {
		return "", fmt.Errorf("%w: a drill record names its participants (§1.3)", ErrBadCommand)
	}
	if d := e.running; d != nil {
		return d.rec.ID, fmt.Errorf("%w: drill %s (%s) is running", ErrNotAllowed, d.rec.ID, d.rec.Playbook)
	}
	for _, inc := range e.incidents {
		if inc.real() && inc.open() {
			// A real alarm takes priority: no drill while one is open.
			return inc.ID, fmt.Errorf("%w: real incident %s (%s) is open", ErrNotAllowed, inc.ID, inc.Playbook)
		}
	}
	now := e.clk.Now()
	d := &drillRun{}
	e.running = d // before raise: the incident is the drill's from its first report
	source, why := c.By, "drill (§1.3), participants: "+strings.Join(who, ", ")
	if c.Input != "" {
		source, why = c.Input, "test of input "+c.Input+" by "+c.By+" (§1.3), participants: "+strings.Join(who, ", ")
	}
	inc := e.raise(raising{pb: pb, variant: c.Variant, origin: c.Origin, source: source, drill: true, at: now, why: why})
	d.inc = inc
	d.rec = &DrillRecord{ID: inc.ID, Hall: e.cfg.Hall.ID, Drill: true, Playbook: pb.ID, Section: inc.pb.Section,
		Variant: c.Variant, TypeZH: pb.Type.ZH, Type: pb.Type.EN, Participants: who, StartedBy: c.By, StartedAt: now.UTC()}
	if v := pb.Variant(c.Variant); v != nil && v.Section != "" {
		d.rec.Section = v.Section
	}
	if max := pb.Drill.MaxDuration.D(); max > 0 {
		d.timer = e.after(max, func() {
			if e.running == d {
				e.endDrill(d, DrillTimedOut, "hallguard", fmt.Sprintf("drill ended after its max_duration %s", max), "")
			}
		})
	}
	return inc.ID, nil
}

// endDrill ends the running drill: its incident is resolved (a drill
// report), then the drill record is made.
func (e *Engine) endDrill(d *drillRun, outcome, by, reason, abortedBy string) {
	d.rec.Outcome, d.rec.EndedBy, d.rec.AbortedBy = outcome, by, abortedBy
	if d.inc.open() {
		e.close(d.inc, EventResolved, by, reason) // calls drillClosed
		return
	}
	e.drillClosed(d.inc)
}

// drillClosed makes the record of the running drill once its incident is
// closed, whichever way (stop, max_duration, abort, or a resolve command).
func (e *Engine) drillClosed(inc *Incident) {
	d := e.running
	if d == nil || d.inc != inc {
		return
	}
	e.running = nil
	if d.timer != nil {
		d.timer.Stop()
	}
	r := d.rec
	if r.Outcome == "" {
		r.Outcome, r.EndedBy = DrillCompleted, inc.ResolvedBy
	}
	r.EndedAt = inc.ResolvedAt.UTC()
	r.DurationSeconds = inc.ResolvedAt.Sub(inc.DetectedAt).Seconds()
	r.AcknowledgedBy = inc.AckedBy
	r.AckSeconds = seconds(inc.DetectedAt, inc.AckedAt)
	r.Steps = inc.timeline().Steps
	r.Completed, r.Missed = []string{}, []string{}
	for _, s := range inc.Steps {
		if s.Done {
			r.Completed = append(r.Completed, s.ID)
		} else {
			r.Missed = append(r.Missed, s.ID)
		}
	}
	// The comments made while it ran (a real silent incident, §4.3) stay:
	// the record must say what happened during the drill (§1.3).
	if r.Comments == nil {
		r.Comments = []DrillComment{}
	}
	if r.RealIncidents == nil {
		r.RealIncidents = []string{}
	}
	e.drillRecs[r.ID] = r
	if r.Outcome != DrillAborted {
		e.lastDrill[r.Playbook] = inc.ResolvedAt
	}
	e.emitDrill(r)
	e.checkDrillsDue()
}

func (e *Engine) emitDrill(r *DrillRecord) {
	if e.sink.Drill != nil {
		c := *r
		c.Participants = slices.Clone(r.Participants)
		c.Steps = slices.Clone(r.Steps)
		c.Completed = slices.Clone(r.Completed)
		c.Missed = slices.Clone(r.Missed)
		c.Comments = slices.Clone(r.Comments)
		c.RealIncidents = slices.Clone(r.RealIncidents)
		e.sink.Drill.Drill(c)
	}
}

// noteSilentDuringDrill records in the running drill that a real silent
// incident was raised during it, without ending the drill.
func (e *Engine) noteSilentDuringDrill(inc *Incident) {
	if d := e.running; d != nil {
		d.rec.RealIncidents = append(d.rec.RealIncidents, inc.ID)
		d.rec.Comments = append(d.rec.Comments, DrillComment{At: e.clk.Now().UTC(), By: "hallguard",
			Text: fmt.Sprintf("real silent %s incident %s raised during this drill; the drill went on in the hall so that nothing there changed (§4.3)", inc.Playbook, inc.ID)})
	}
}

// abortDrill ends the running drill because real incident inc was raised
// (§1.3: a real alarm takes priority over a drill).
func (e *Engine) abortDrill(inc *Incident) {
	if d := e.running; d != nil {
		d.rec.RealIncidents = append(d.rec.RealIncidents, inc.ID)
		e.endDrill(d, DrillAborted, "hallguard", fmt.Sprintf("drill aborted: real %s incident %s", inc.Playbook, inc.ID), inc.ID)
	}
}

// Drills returns the drill records the engine holds (this run and its
// history), by id.
func (e *Engine) Drills() []DrillRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]DrillRecord, 0, len(e.drillRecs))
	for _, r := range e.drillRecs {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// LastDrills returns when each playbook was last drilled (aborted drills
// do not count).
func (e *Engine) LastDrills() map[string]time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]time.Time, len(e.lastDrill))
	for k, v := range e.lastDrill {
		out[k] = v
	}
	return out
}

// drillCheckEvery is how often overdue drills are looked for.
const drillCheckEvery = time.Hour

// checkDrillsDue raises, updates or clears the supervisory condition
// drill_overdue: a playbook with drill.interval not drilled within it
// (§1.3: drills are held regularly). One condition lists every overdue
// playbook in Detail; Count says how many.
func (e *Engine) checkDrillsDue() {
	now := e.clk.Now()
	var due []string
	for _, pb := range e.cfg.Playbooks {
		iv := pb.Drill.Interval.D()
		if iv <= 0 {
			continue
		}
		last, ever := e.lastDrill[pb.ID], true
		if last.IsZero() {
			last, ever = e.drillSince, false
		}
		if now.Sub(last) < iv {
			continue
		}
		if ever {
			due = append(due, fmt.Sprintf("%s (last drilled %s, interval %s)", pb.ID, last.UTC().Format(time.RFC3339), iv))
		} else {
			due = append(due, fmt.Sprintf("%s (never drilled, interval %s)", pb.ID, iv))
		}
	}
	sort.Strings(due)
	detail := strings.Join(due, "; ")
	if detail == e.overdue {
		return
	}
	e.overdue = detail
	e.sink.Condition(Condition{Class: ClassSupervisory, Kind: "drill_overdue", Active: len(due) > 0, Time: now,
		Detail: detail, Count: uint64(len(due))})
}

// startDrillChecks checks now and then every drillCheckEvery.
func (e *Engine) startDrillChecks() {
	if e.drillSince.IsZero() {
		e.drillSince = e.clk.Now()
	}
	var tick func()
	tick = func() {
		e.checkDrillsDue()
		e.evict() // incidents.retention, to the hour
		e.checkReviewsDue()
		e.drillTick = e.after(drillCheckEvery, tick)
	}
	e.checkDrillsDue()
	e.checkReviewsDue()
	e.drillTick = e.after(drillCheckEvery, tick)
}
