package engine

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// OutputFailed records that output could not be driven (§3.2: a report must
// not claim a measure that did not happen): every open incident that wants
// it gets the measure "<output> failed: <detail>" and an update report. The
// daemon raises trouble output_failed beside it and keeps retrying. An
// output no incident wants (one failing to return to rest) concerns no
// report: the trouble alone says so.
func (e *Engine) OutputFailed(output, detail string) {
	e.outputMeasure(output, fmt.Sprintf("%s failed: %s; retrying", output, detail))
}

// OutputRestored records that output, after failing, is driven again as the
// open incidents want it: the measure "<output> on again" and an update
// report for each.
func (e *Engine) OutputRestored(output string) {
	e.outputMeasure(output, output+" on again, after a failure")
}

func (e *Engine) outputMeasure(output, text string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	now := e.clk.Now()
	for _, inc := range e.sortedIncidents() {
		if !inc.open() || !inc.outputs[output] {
			continue
		}
		inc.measure(Measure{At: now, Kind: "output", Text: text, By: "hallguard"})
		e.report(inc, EventUpdate, nil, time.Time{})
	}
}

// sortedIncidents returns the incidents in id order (reports in a stable
// order).
func (e *Engine) sortedIncidents() []*Incident {
	out := make([]*Incident, 0, len(e.incidents))
	for _, inc := range e.incidents {
		out = append(out, inc)
	}
	slices.SortFunc(out, func(a, b *Incident) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Note adds a note measure by hallguard to an incident and sends an update
// report, open or closed (what the daemon learns later about a measure: a
// CCTV bookmark the video system confirmed or not). It reports whether the
// incident is known.
func (e *Engine) Note(incident, section, text string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	inc := e.incidents[incident]
	if inc == nil || e.closed {
		return false
	}
	inc.measure(Measure{At: e.clk.Now(), Kind: "note", Section: section, Text: text, By: "hallguard"})
	e.report(inc, EventUpdate, nil, time.Time{})
	return true
}
