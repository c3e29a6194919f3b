package engine

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ProbeSource is the Source of incidents the business-system probe opens.
const ProbeSource = "probe"

// ProbeFailed reports that the business-system probe (§4.2) has failed
// its threshold of checks in a row: check names what was checked, detail
// the last error. It opens the system_failure incident (origin probe)
// unless one is open; then the failure is added to it as a note.
func (e *Engine) ProbeFailed(check, detail string, failures int, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.probeInc != nil && e.probeInc.open() {
		return
	}
	pb := e.cfg.Playbook("system_failure")
	if pb == nil {
		return
	}
	why := fmt.Sprintf("business system check %s failed %d times in a row: %s", check, failures, detail)
	if inc := e.openIncident(pb.ID, false); inc != nil {
		inc.measure(Measure{At: at, Kind: "note", Section: pb.Section, Text: why, By: "hallguard"})
		e.report(inc, EventUpdate, nil, time.Time{})
		e.probeInc = inc
		return
	}
	inc := e.raise(raising{pb: pb, origin: OriginProbe, source: ProbeSource, at: at, trigger: at, why: why,
		impact: "business system unavailable: " + check})
	e.probeInc = inc
	e.probeDown = at
}

// ProbeRecovered reports that the business system answers again. The
// incident the probe opened is resolved, with the outage's duration; one
// that staff raised is only told (staff resolve it).
func (e *Engine) ProbeRecovered(check string, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	inc := e.probeInc
	e.probeInc = nil
	if inc == nil {
		// An outage the probe opened before a restart (Restore).
		if open := e.openIncident("system_failure", false); open != nil && open.Origin == OriginProbe {
			inc = open
		}
	}
	if e.closed || inc == nil || !inc.open() {
		return
	}
	if e.probeDown.IsZero() || e.probeDown.Before(inc.OccurredAt) {
		e.probeDown = inc.OccurredAt
	}
	if inc.Origin != OriginProbe {
		inc.measure(Measure{At: at, Kind: "note", Section: inc.pb.Section, Text: "business system check " + check + " succeeds again", By: "hallguard"})
		e.report(inc, EventUpdate, nil, time.Time{})
		return
	}
	out := at.Sub(e.probeDown).Round(time.Second)
	inc.Control = fmt.Sprintf("service restored after an outage of %s", out)
	e.close(inc, EventResolved, ProbeSource, fmt.Sprintf("business system check %s succeeds again; outage %s", check, out))
}

// checkRecords validates what a step records. A "count" (§4.2 3: how many
// customers left a phone number) must be a whole number, so that the
// numbers themselves are never stored (privacy).
func checkRecords(st *StepState, records []string) error {
	if len(records) < len(st.Records) {
		return fmt.Errorf("%w: step %q records %s", ErrBadCommand, st.ID, strings.Join(st.Records, ", "))
	}
	for i, kind := range st.Records {
		if kind != "count" {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(records[i])); err != nil || n < 0 {
			return fmt.Errorf("%w: step %q records a count (a whole number, never the phone numbers themselves), not %q", ErrBadCommand, st.ID, records[i])
		}
	}
	return nil
}

// CCTVSink receives CCTV bookmark requests (Sinks.CCTV). Like Sink's
// methods, PreserveCCTV is called with the engine's lock held.
type CCTVSink interface {
	PreserveCCTV(CCTVRequest)
}

// CCTVRequest asks the video recorder to keep the footage of an incident
// from From to Until.
type CCTVRequest struct {
	Incident, Hall, Playbook, Step string
	From, Until                    time.Time
}

// preserveCCTV requests the bookmark of a preserve_cctv step and records
// it in the incident's measures. The window starts cctv.before ahead of the
// incident and ends cctv.after past now.
func (e *Engine) preserveCCTV(inc *Incident, st *StepState) {
	now := e.clk.Now()
	rq := CCTVRequest{Incident: inc.ID, Hall: e.cfg.Hall.ID, Playbook: inc.Playbook, Step: st.ID,
		From: inc.OccurredAt.Add(-e.cfg.CCTV.Before.D()).UTC(), Until: now.Add(e.cfg.CCTV.After.D()).UTC()}
	st.cctv = true
	text := fmt.Sprintf("CCTV to keep from %s to %s (no cctv.topic: keep it by hand)", rq.From.Format(time.RFC3339), rq.Until.Format(time.RFC3339))
	if e.sink.CCTV != nil && e.cfg.CCTV.Topic != "" {
		e.sink.CCTV.PreserveCCTV(rq)
		text = fmt.Sprintf("CCTV bookmark requested from %s to %s", rq.From.Format(time.RFC3339), rq.Until.Format(time.RFC3339))
	}
	inc.measure(Measure{At: now, Kind: "note", Section: st.Section, Text: text, By: "hallguard"})
}

// preserveUndoneCCTV is the safety net at close: footage a preserve_cctv
// step would have kept is requested even if nobody did the step.
func (e *Engine) preserveUndoneCCTV(inc *Incident) {
	for i := range inc.Steps {
		if st := &inc.Steps[i]; st.Action == "preserve_cctv" && !st.cctv {
			e.preserveCCTV(inc, st)
		}
	}
}
