package engine

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
)

// Restore reopens the incidents that were still open (active or
// acknowledged) when the daemon stopped or crashed, from the latest report
// of each (the daemon reads them back from its journal's index of open
// incidents). Call it before Start (or, when the journal could not be read
// at start, as soon as it can; incidents already held are left alone). A
// robbery then still latches until the center resolves it, and a fire
// still drives its outputs. Drills are not restored: a drill interrupted
// by a restart is over. Each restored incident sends an update report, so
// the center learns the hall came back with it. It returns how many were
// restored.
//
// Time across the restart (§3.2, §2):
//
//   - what fell due while the daemon was down is done at once: a delayed
//     output not recorded as on in the measures is driven (with its
//     measure), and every escalation the measures do not record is sent,
//     in order, after the restore report;
//   - what is not yet due is scheduled for what was left of its delay,
//     counted from the restart by the clock's timers (monotonic). How much
//     had passed is taken from the wall clock only where it does not
//     contradict the journal: a box that boots with its clock behind never
//     waits longer than the delay left when the report was made.
func (e *Engine) Restore(latest []Report) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	sort.Slice(latest, func(i, j int) bool { return latest[i].Seq < latest[j].Seq })
	now := e.clk.Now()
	n := 0
	for _, r := range latest {
		if (r.State != StateActive && r.State != StateAcknowledged) || r.Drill || r.Test {
			continue
		}
		pb := e.cfg.Playbook(r.Playbook)
		if pb == nil || e.incidents[r.Incident] != nil {
			continue
		}
		inc := &Incident{
			ID: r.Incident, Playbook: r.Playbook, Variant: r.Variant, Origin: r.Origin, Source: r.Source,
			State: r.State, OccurredAt: r.OccurredAt, DetectedAt: r.OccurredAt, Presses: r.Presses,
			Inputs: slices.Clone(r.Inputs), Steps: slices.Clone(r.Steps), Measures: slices.Clone(r.Measures),
			Version: r.Version, Impact: r.Impact, Control: r.Control, Trend: r.Trend, Other: r.Other,
			ImpactDetail: r.ImpactDetail, pb: pb, outputs: map[string]bool{},
		}
		inc.addVariant(r.Variant)
		for _, v := range r.Variants {
			inc.addVariant(v)
		}
		e.hold(inc)
		elapsed := restoredElapsed(now, r)
		fell := e.restoreOutputs(inc, pb, elapsed, now) // done at once: due while down
		dueNow, escFell := e.restoreEscalations(inc, pb, elapsed)
		fell = append(fell, escFell...)
		text := "hallguard restarted: incident restored from the journal, outputs driven again"
		if len(fell) > 0 {
			text += "; done at once, as they fell due while hallguard was down: " + strings.Join(fell, ", ")
		}
		inc.measure(Measure{At: now, Kind: "note", By: "hallguard", Text: text})
		e.report(inc, EventUpdate, nil, time.Time{})
		for _, i := range dueNow {
			e.escalate(inc, i, pb.Escalation[i])
		}
		n++
	}
	if n > 0 {
		e.applyOutputs()
	}
	return n
}

// restoreOutputs drives again, for an incident Restore reopens after elapsed,
// the outputs its measures record as on, drives at once (with their
// measures) those whose delay ran out while the daemon was down, and
// schedules the rest for what is left of their delay. It returns the
// outputs that fell due while down.
func (e *Engine) restoreOutputs(inc *Incident, pb *config.Playbook, elapsed time.Duration, now time.Time) (fell []string) {
	for _, po := range pb.Outputs {
		if !e.outputAllowed(inc, po.Output) {
			continue
		}
		po := po
		switch {
		case hasMeasure(inc, po.Output+" on"):
			inc.outputs[po.Output] = true // it was on: on again at once
		case po.Delay.D() <= elapsed:
			e.want(inc, po, now)
			fell = append(fell, po.Output+" on")
		default:
			inc.timers = append(inc.timers, e.after(po.Delay.D()-elapsed, func() {
				if inc.open() {
					e.want(inc, po, e.clk.Now())
					e.report(inc, EventUpdate, nil, time.Time{})
				}
			}))
		}
	}
	return fell
}

// restoreEscalations schedules, for an active incident Restore reopens
// after elapsed, the escalations its measures do not record as sent and
// that are not yet due. It returns the indexes of those that fell due while
// the daemon was down, for Restore to send after its report, and their
// measure texts.
func (e *Engine) restoreEscalations(inc *Incident, pb *config.Playbook, elapsed time.Duration) (dueNow []int, fell []string) {
	done := escalationsDone(inc)
	for i, esc := range pb.Escalation {
		i, esc := i, esc
		switch {
		case i < done || inc.State != StateActive:
			// sent before the stop, or no longer needed
		case esc.After.D() <= elapsed:
			dueNow = append(dueNow, i)
			fell = append(fell, "escalation to "+esc.Role)
		default:
			inc.timers = append(inc.timers, e.after(esc.After.D()-elapsed, func() {
				if inc.State == StateActive {
					e.escalate(inc, i, esc)
				}
			}))
		}
	}
	return dueNow, fell
}

// restoredElapsed is how long ago, at least, the incident occurred: by the
// wall clock now, but never less than the journal already knew when the
// report was made (a clock that boots behind), and never negative.
func restoredElapsed(now time.Time, r Report) time.Duration {
	elapsed := max(now.Sub(r.OccurredAt), 0)
	if !r.Created.IsZero() {
		elapsed = max(elapsed, r.Created.Sub(r.OccurredAt))
	}
	return elapsed
}

// escalationsDone counts the escalations the incident's measures record:
// they are sent in the order of the ladder.
func escalationsDone(inc *Incident) int {
	n := 0
	for _, m := range inc.Measures {
		if m.Kind == "escalation" {
			n++
		}
	}
	return n
}

func hasMeasure(inc *Incident, text string) bool {
	for _, m := range inc.Measures {
		if m.Kind == "output" && strings.EqualFold(m.Text, text) {
			return true
		}
	}
	return false
}

// ContinueSeq makes the report sequence continue after n, the highest seq
// the journal has seen, if it is not already past it (WithFirstSeq, for a
// journal read only after the engine started).
func (e *Engine) ContinueSeq(n uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq = max(e.seq, n)
}
