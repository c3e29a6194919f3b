package engine

import (
	"slices"
	"sort"
	"strings"
	"time"
)

// Restore reopens the incidents that were still open (active or
// acknowledged) when the daemon stopped or crashed, from the latest report
// of each (the daemon reads them back from its journal). Call it before
// Start. A robbery then still latches until the center resolves it, and a
// fire still drives its outputs; escalations not yet sent are rescheduled
// from the incident's activation. Drills are not restored: a drill
// interrupted by a restart is over. Each restored incident sends an update
// report, so the center learns the hall came back with it. It returns how
// many were restored.
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
		elapsed := now.Sub(inc.OccurredAt)
		for _, po := range pb.Outputs {
			if !e.outputAllowed(inc, po.Output) {
				continue
			}
			po := po
			if po.Delay.D() <= elapsed || hasMeasure(inc, po.Output+" on") {
				inc.outputs[po.Output] = true // it was on, or is due: on again at once
				continue
			}
			inc.timers = append(inc.timers, e.after(po.Delay.D()-elapsed, func() {
				if inc.open() {
					e.want(inc, po, e.clk.Now())
					e.report(inc, EventUpdate, nil, time.Time{})
				}
			}))
		}
		for i, esc := range pb.Escalation {
			i, esc := i, esc
			if esc.After.D() <= elapsed || inc.State != StateActive {
				continue // already sent before the restart (or no longer needed)
			}
			inc.timers = append(inc.timers, e.after(esc.After.D()-elapsed, func() {
				if inc.State == StateActive {
					e.escalate(inc, i, esc)
				}
			}))
		}
		inc.measure(Measure{At: now, Kind: "note", By: "hallguard",
			Text: "hallguard restarted: incident restored from the journal, outputs driven again"})
		e.report(inc, EventUpdate, nil, time.Time{})
		n++
	}
	if n > 0 {
		e.applyOutputs()
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
