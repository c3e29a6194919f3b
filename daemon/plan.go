package daemon

import (
	"encoding/json"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/daemon/journal"
)

// planState is the daemon's part of the plan's reporting, drill and
// review rules (§1.3, §3): their metrics, the engine's delivery hook and
// the drill records' journal and topic.
type planState struct {
	eng atomic.Pointer[engine.Engine]
	// falseAlarms counts incidents closed as false alarms per input
	// involved: an input that keeps raising them needs servicing.
	falseAlarms *prometheus.CounterVec
	drillLast   *prometheus.GaugeVec
	walkLast    *prometheus.GaugeVec
}

// noInput labels false alarms of incidents no input raised.
const noInput = "none"

func newPlanState(d *Daemon) *planState {
	p := &planState{
		falseAlarms: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hallguard_false_alarms_total",
			Help: "Incidents closed as false alarms, per input involved (input \"none\" for incidents raised by people)."}, []string{"input"}),
		drillLast: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hallguard_drill_last_timestamp_seconds",
			Help: "When each playbook was last drilled (§1.3; aborted drills do not count); 0 if never."}, []string{"playbook"}),
	}
	p.walkLast = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hallguard_input_walk_test_last_timestamp_seconds",
		Help: "When each input was last proven by a walk test; 0 if never (since the journal began)."}, []string{"input"})
	d.metrics.Registry.MustRegister(p.falseAlarms, p.drillLast, p.walkLast,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hallguard_incidents_unreviewed",
			Help: "Resolved incidents not reviewed within review.due_after (§3.4); false alarms and drills excluded."},
			func() float64 {
				if !d.ready.Load() {
					return 0
				}
				return float64(d.eng.Unreviewed())
			}))
	for _, in := range d.cfg.Inputs {
		p.falseAlarms.WithLabelValues(in.ID)
		p.walkLast.WithLabelValues(in.ID)
	}
	p.falseAlarms.WithLabelValues(noInput)
	for _, pb := range d.cfg.Playbooks {
		p.drillLast.WithLabelValues(pb.ID)
	}
	return p
}

// planReport is fanout.Report's hook: it is called, under the engine's
// lock, for every report the engine makes.
func (d *Daemon) planReport(r engine.Report) {
	d.plan.eng.Store(d.eng) // d.eng is set before the engine can report
	if r.Event == engine.EventFalseAlarm {
		counted := false
		for _, id := range r.Inputs {
			if d.cfg.Input(id) != nil { // label values from the config only
				d.plan.falseAlarms.WithLabelValues(id).Inc()
				counted = true
			}
		}
		if !counted {
			d.plan.falseAlarms.WithLabelValues(noInput).Inc()
		}
	}
}

// onAck is the publisher's OnAck: metrics, and the first PUBACK of an
// incident's initial report for its timeline. The engine is told off the
// publisher's delivery path, so delivery never waits for the engine's lock.
func (d *Daemon) onAck(r engine.Report, at time.Time) {
	d.metrics.acked(r, at)
	if e := d.plan.eng.Load(); e != nil && r.Version == 1 {
		d.loops.Go(func() { e.Delivered(r.ID, at) })
	}
}

// drillHistory reads what earlier runs recorded from the journal: drill
// records, so that last drill times and evaluations survive restarts
// (§1.3), and the incidents they closed and reviewed (§3.4).
func (d *Daemon) drillHistory() engine.Option {
	drills, closed := d.drillRecords(), d.closedIncidents()
	return func(e *engine.Engine) {
		drills(e)
		closed(e)
	}
}

func (d *Daemon) drillRecords() engine.Option {
	h := engine.DrillHistory{Since: d.clk.Now()}
	if first, err := d.store.List(journal.Filter{Limit: 1}); err == nil && len(first) == 1 {
		h.Since = first[0].Time
	}
	if walks, err := d.store.List(journal.Filter{Kind: "walk_test"}); err == nil {
		for _, rec := range walks {
			var w engine.WalkRecord
			if json.Unmarshal(rec.Data, &w) == nil {
				d.walkMetrics(w)
			}
		}
	}
	recs, err := d.store.List(journal.Filter{Kind: "drill"})
	if err != nil {
		d.log.Warn("drill history not read from the journal", "err", err)
	}
	for _, rec := range recs {
		var r engine.DrillRecord
		if err := json.Unmarshal(rec.Data, &r); err != nil || r.ID == "" {
			d.log.Warn("drill record not readable", "seq", rec.Seq, "err", err)
			continue
		}
		h.Records = append(h.Records, r)
		if r.Outcome != engine.DrillAborted {
			d.plan.drillLast.WithLabelValues(r.Playbook).Set(float64(r.EndedAt.Unix()))
		}
	}
	return engine.WithDrillHistory(h)
}

func (d *Daemon) walkMetrics(w engine.WalkRecord) {
	for _, in := range w.Inputs {
		if in.TestedAt != nil && d.cfg.Input(in.ID) != nil {
			d.plan.walkLast.WithLabelValues(in.ID).Set(float64(in.TestedAt.Unix()))
		}
	}
}

// closedIncidents reads the incidents earlier runs resolved, and which of
// them were reviewed, from the journal.
func (d *Daemon) closedIncidents() engine.Option {
	byID := map[string]*engine.ClosedIncident{}
	var order []string
	recs, err := d.store.List(journal.Filter{Kind: "incident"})
	if err != nil {
		d.log.Warn("closed incidents not read from the journal", "err", err)
	}
	for _, rec := range recs {
		var data struct {
			Event engine.Event
			Test  bool
		}
		if json.Unmarshal(rec.Data, &data) != nil || data.Test || (data.Event != engine.EventResolved && data.Event != engine.EventFalseAlarm) {
			continue
		}
		if byID[rec.Incident] == nil {
			order = append(order, rec.Incident)
		}
		byID[rec.Incident] = &engine.ClosedIncident{ID: rec.Incident, Playbook: rec.Playbook, Drill: rec.Drill,
			Resolution: data.Event, ResolvedAt: rec.Time}
	}
	if reviews, err := d.store.List(journal.Filter{Kind: "review"}); err == nil {
		for _, rec := range reviews {
			if c := byID[rec.Incident]; c != nil {
				c.Reviewed = true
			}
		}
	}
	out := make([]engine.ClosedIncident, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return engine.WithClosedIncidents(out)
}

// reviewOf decodes a review command's review; a payload that does not
// decode gives an empty review, which the engine refuses field by field.
func reviewOf(raw json.RawMessage) *engine.Review {
	if len(raw) == 0 {
		return nil
	}
	var r engine.Review
	_ = json.Unmarshal(raw, &r)
	return &r
}
