// fanout is the engine's Sink: the one place where an engine effect (a
// report, an output to drive, an input or queue state, a condition, and
// the optional drill, walk-test, review and CCTV records) is handed to the
// daemon's parts: the outbox and MQTT, the DC-09 lane, the journal's
// recorder, metrics, the actuator, the log.
//
// The engine calls every method with its lock held (engine.Sink), so a
// method here hands off and returns. It must not block on the network, a
// device or a channel send, and must not call into the engine, directly or
// through anything that takes the engine's lock: an engine call that must
// follow an effect is queued (actuator.note) and made by its own goroutine.
// It decides nothing: what to report or drive is the engine's.

package daemon

import (
	"bytes"
	"encoding/json"
	"text/template"
	"time"

	"github.com/hallguard/hallguard/daemon/engine"
)

// fanout is the engine's Sink: every effect to MQTT, metrics and outputs.
type fanout struct{ d *Daemon }

// sinks gives the engine fanout as its Sink and as every optional sink:
// drill and walk-test records, reviews and CCTV bookmark requests.
func (f *fanout) sinks() engine.Sinks {
	return engine.Sinks{Sink: f, Drill: f, Walk: f, Review: f, CCTV: f}
}

// fanout is every sink engine.Sinks has (sinks above): a method renamed or
// dropped here, or there, does not build.
var (
	_ engine.Sink       = (*fanout)(nil)
	_ engine.DrillSink  = (*fanout)(nil)
	_ engine.WalkSink   = (*fanout)(nil)
	_ engine.ReviewSink = (*fanout)(nil)
	_ engine.CCTVSink   = (*fanout)(nil)
)

func (f *fanout) Report(r engine.Report) {
	f.d.metrics.report(r)
	f.d.planReport(r)
	f.d.pub.Report(r) // the outbox journals the report with it
	f.d.arcReport(r)  // the DC-09 lane, retired on the ARC's own ACK
	switch r.Event {
	case engine.EventRaised, engine.EventAcknowledged, engine.EventResolved, engine.EventFalseAlarm:
		data := map[string]any{"event": r.Event, "state": r.State,
			"variant": r.Variant, "origin": r.Origin, "source": r.Source, "version": r.Version, "report": r.ID}
		if r.Test {
			data["test"] = true // a walk test's hold-up presses: never reviewed
		}
		f.d.rec.add("incident", r.Incident, r.Playbook, r.Drill, data)
	case engine.EventStep:
		if n := len(r.Measures); n > 0 {
			f.d.rec.add("step", r.Incident, r.Playbook, r.Drill, r.Measures[n-1])
		}
	}
	f.d.metrics.reportsPending.Set(float64(f.d.pub.Pending()))
	f.d.log.Info("report", "id", r.ID, "playbook", r.Playbook, "variant", r.Variant, "event", r.Event, "state", r.State)
}

func (f *fanout) Drive(output string, active bool, reason string) {
	// hallguard_output_active follows the line, once it took the level
	// (actuator), not the wish.
	f.d.act.set(output, active)
	f.d.rec.add("output", "", "", false, map[string]any{"output": output, "active": active, "reason": reason})
	f.d.log.Info("output", "output", output, "active", active, "reason", reason)
}

func (f *fanout) Input(s engine.InputState) {
	f.d.metrics.input(s)
	f.d.pub.Input(s)
	if s.Kind != "counter" { // pulses are counted in the queue, not journalled one by one
		f.d.rec.add("input", "", "", false, s)
	}
}

func (f *fanout) Queue(q engine.QueueState) {
	f.d.metrics.queue(q)
	f.d.pub.Queue(q)
}

func (f *fanout) Condition(c engine.Condition) { f.d.condition(c) }

// Drill makes fanout an engine.DrillSink: the record goes through the
// durable outbox to drills/<drill-id>, journalled (kind "drill") with it
// (side.go): replayed after a restart, retired on PUBACK.
func (f *fanout) Drill(r engine.DrillRecord) {
	d := f.d
	if r.Outcome != engine.DrillAborted && d.config().Playbook(r.Playbook) != nil {
		d.plan.drillLast.WithLabelValues(r.Playbook).Set(float64(r.EndedAt.Unix()))
	}
	d.log.Info("drill record", "drill", r.ID, "playbook", r.Playbook, "outcome", r.Outcome, "comments", len(r.Comments))
	b, err := json.Marshal(r)
	if err != nil {
		d.log.Error("drill record not encodable", "drill", r.ID, "err", err)
		return
	}
	d.record("drill", r.ID, "drills/"+r.ID, b, r, r.ID, r.Playbook, true)
}

// WalkTest makes fanout an engine.WalkSink: the walk-test record goes
// through the durable outbox to drills/<walk-id>, journalled (kind
// "walk_test") with it.
func (f *fanout) WalkTest(r engine.WalkRecord) {
	d := f.d
	d.walkMetrics(r)
	d.log.Info("walk test", "id", r.ID, "tested", len(r.Tested), "untested", r.Untested)
	b, err := json.Marshal(r)
	if err != nil {
		d.log.Error("walk test record not encodable", "id", r.ID, "err", err)
		return
	}
	d.record("walk_test", r.ID, "drills/"+r.ID, b, r, "", "", true)
}

// Review makes fanout an engine.ReviewSink: the review goes through the
// durable outbox to <review.topic>/<incident-id> for the Safety
// Supervision Department (§3.4), journalled (kind "review") with it.
func (f *fanout) Review(r engine.Review) {
	d := f.d
	d.log.Info("review", "incident", r.Incident, "by", r.By, "actions", len(r.Actions))
	b, err := json.Marshal(r)
	if err != nil {
		d.log.Error("review not encodable", "incident", r.Incident, "err", err)
		return
	}
	d.record("review", r.Incident, d.config().Review.Topic+"/"+r.Incident, b, r, r.Incident, r.Playbook, false)
}

// PreserveCCTV makes fanout an engine.CCTVSink: the bookmark request is
// rendered from cctv.payload and goes through the durable outbox to
// cctv.topic (journalled as kind "cctv", replayed after a restart, retired
// on PUBACK); the video system's answer on cctv.reply_topic then confirms
// it in the incident's report, or its absence says it is unconfirmed
// (side.go).
func (f *fanout) PreserveCCTV(r engine.CCTVRequest) {
	d := f.d
	cctv := d.config().CCTV // the config in force (reload)
	id := newRequestID()
	var b bytes.Buffer
	tpl, err := template.New("cctv").Option("missingkey=error").Parse(cctv.Payload)
	if err == nil {
		err = tpl.Execute(&b, map[string]string{"ID": id, "Incident": r.Incident, "Hall": r.Hall, "Playbook": r.Playbook, "Step": r.Step,
			"From": r.From.Format(time.RFC3339), "Until": r.Until.Format(time.RFC3339)})
	}
	if err != nil {
		d.log.Error("cctv bookmark not rendered", "incident", r.Incident, "err", err)
		return
	}
	d.expectCCTV(id, r.Incident, r.Step) // before it can be answered
	d.record("cctv", r.Incident, cctv.Topic, b.Bytes(), cctvData{ID: id, Topic: cctv.Topic, Step: r.Step, From: r.From, Until: r.Until},
		r.Incident, r.Playbook, false)
}
