package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/daemon/journal"
)

// JournalPath is the journal's file in the state directory.
func JournalPath(stateDir string) string { return filepath.Join(stateDir, "hallguard.db") }

// openJournal opens the durable journal and outbox and registers their
// metrics. A corrupt file has been moved aside by journal.Open: that is
// raised as trouble, and the daemon runs on with a fresh journal.
func (d *Daemon) openJournal() error {
	fsync := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hallguard_journal_fsync_duration_seconds",
		Help:    "Duration of one journal commit (write and fsync), which several reports may share.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}})
	d.metrics.Registry.MustRegister(fsync)
	st, err := journal.Open(JournalPath(d.cfg.StateDir), journal.Options{
		Clock: d.clk, Logger: d.log,
		Retention: d.cfg.Journal.OutboxRetention.D(), JournalRetention: d.cfg.Journal.Retention.D(),
		OnFsync:      func(dur time.Duration) { fsync.Observe(dur.Seconds()) },
		ReportBudget: d.cfg.Journal.ReportBudget.D(),
		// §3.2: a report the disk holds past the budget goes from memory.
		OnSlow: func(active bool, err error) {
			detail := ""
			if err != nil {
				detail = err.Error()
			}
			d.journalSlow(slowBudget, active, detail)
		},
		OnTrouble: func(active bool, err error) {
			detail := ""
			if err != nil {
				detail = err.Error()
			}
			d.daemonCondition(engine.ClassTrouble, "journal_degraded", active, detail)
			if !active {
				d.loops.Go(d.retryRestore)
			}
		},
	})
	if err != nil {
		if errors.Is(err, journal.ErrLocked) {
			return fmt.Errorf("daemon: journal %s is in use: is another hallguard running on this state directory? %w", JournalPath(d.cfg.StateDir), err)
		}
		return fmt.Errorf("daemon: journal: %w", err)
	}
	d.store = st
	if rec := st.Recovered(); rec != nil {
		d.log.Error("journal was damaged and has been moved aside; a fresh journal was started",
			"moved_to", rec.MovedTo, "reason", rec.Reason, "salvaged_reports", rec.Salvaged)
		d.daemonCondition(engine.ClassTrouble, "journal_recovered", true, fmt.Sprintf("moved to %s: %s", rec.MovedTo, rec.Reason))
	}
	ob := st.Outbox()
	if n := ob.Len(); n > 0 {
		d.log.Info("replaying reports not yet acknowledged", "reports", n)
		d.metrics.redelivered.Add(float64(n))
	}
	d.metrics.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hallguard_outbox_pending", Help: "Reports in the durable outbox not yet acknowledged."},
			func() float64 { return float64(ob.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hallguard_outbox_oldest_age_seconds", Help: "Age of the oldest report not yet acknowledged; 0 when none."},
			func() float64 {
				if t := ob.OldestPending(); !t.IsZero() {
					return d.clk.Now().Sub(t).Seconds()
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hallguard_journal_bytes", Help: "Size of the journal file."},
			func() float64 { return float64(st.Stats().Bytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hallguard_journal_records", Help: "Records in the journal."},
			func() float64 { return float64(st.Stats().Records) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hallguard_journal_degraded", Help: "1 while journal writes fail and reports flow from memory."},
			func() float64 { return b2f(st.Stats().Degraded) }),
	)
	d.rec = newRecorder(d)
	return nil
}

// daemonCondition raises or clears a daemon-wide condition (not tied to an
// input) through the same path as the engine's conditions.
func (d *Daemon) daemonCondition(class engine.Class, kind string, active bool, detail string) {
	d.condition(engine.Condition{Class: class, Kind: kind, Active: active, Time: d.clk.Now(), Detail: detail})
}

// condition sends a condition everywhere conditions go: metrics, MQTT (the
// retained conditions topic), the journal and the log. One raised before
// MQTT and the journal recorder exist (a damaged journal found at start) is
// held and delivered by attachConditions, so the center is still told.
func (d *Daemon) condition(c engine.Condition) {
	d.metrics.condition(c)
	d.arcCondition(c) // arc.go: to the ARC too, if it takes this kind
	d.condMu.Lock()
	if !d.condReady {
		d.condEarly = append(d.condEarly, c)
		d.condMu.Unlock()
	} else {
		d.condMu.Unlock()
		d.pub.Condition(c)
		d.rec.add("trouble", "", "", false, c)
	}
	switch {
	case c.Kind == "pre_alarm" && !c.Active:
	case c.Input == "" && c.Active:
		d.log.Error("trouble", "kind", c.Kind, "class", c.Class, "detail", c.Detail)
	case c.Input == "":
		d.log.Info("trouble cleared", "kind", c.Kind)
	default:
		d.log.Warn("condition", "class", c.Class, "kind", c.Kind, "input", c.Input, "active", c.Active, "detail", c.Detail)
	}
}

// attachConditions delivers the conditions held since start, once the
// publisher and the recorder exist, and sends later ones straight through.
func (d *Daemon) attachConditions() {
	d.condMu.Lock()
	early := d.condEarly
	d.condEarly, d.condReady = nil, true
	d.condMu.Unlock()
	for _, c := range early {
		d.pub.Condition(c)
		d.rec.add("trouble", "", "", false, c)
	}
}

// recorder appends journal records off the engine's lock: callers hand a
// record off and never wait for the disk. Reports do not come here: the
// outbox journals each one in the same transaction that makes it durable.
type recorder struct {
	d    *Daemon
	mu   sync.Mutex
	buf  []journal.Record
	wake chan struct{}
	done chan struct{}
	stop chan struct{}
}

const maxRecorderBacklog = 100000

func newRecorder(d *Daemon) *recorder {
	r := &recorder{d: d, wake: make(chan struct{}, 1), done: make(chan struct{}), stop: make(chan struct{})}
	go r.loop()
	return r
}

// add queues a record; data is marshalled to JSON now.
func (r *recorder) add(kind, incident, playbook string, drill bool, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		r.d.log.Error("journal record not encodable", "kind", kind, "err", err)
		return
	}
	r.mu.Lock()
	if len(r.buf) >= maxRecorderBacklog {
		r.mu.Unlock()
		r.d.metrics.journalDropped.Inc()
		return
	}
	r.buf = append(r.buf, journal.Record{Time: r.d.clk.Now(), Kind: kind, Incident: incident, Playbook: playbook, Drill: drill, Data: b})
	r.mu.Unlock()
	nudge(r.wake)
}

// addSync appends a record and waits until it is on disk (and with it
// everything pushed to the journal before). While the disk fails it
// returns at once: the store keeps the record and reports flow from memory.
func (r *recorder) addSync(kind, incident, playbook string, drill bool, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		r.d.log.Error("journal record not encodable", "kind", kind, "err", err)
		return
	}
	rec := journal.Record{Time: r.d.clk.Now(), Kind: kind, Incident: incident, Playbook: playbook, Drill: drill, Data: b}
	if _, err := r.d.store.Append(rec); err != nil && !errors.Is(err, journal.ErrDegraded) {
		r.d.log.Error("journal append", "kind", kind, "err", err)
	}
}

func (r *recorder) loop() {
	defer close(r.done)
	for {
		select {
		case <-r.wake:
		case <-r.stop:
			r.flush()
			return
		}
		r.flush()
	}
}

func (r *recorder) flush() {
	r.mu.Lock()
	recs := r.buf
	r.buf = nil
	r.mu.Unlock()
	if len(recs) == 0 {
		return
	}
	if _, err := r.d.store.Append(recs...); err != nil && !errors.Is(err, journal.ErrDegraded) {
		// Degraded: the store keeps the records and writes them later.
		r.d.log.Error("journal append", "records", len(recs), "err", err)
	}
}

// close writes what is queued and stops.
func (r *recorder) close() {
	close(r.stop)
	<-r.done
}

// troubleJournalUnreadable is raised while the open incidents could not be
// read from the journal at start (read-only, degraded or damaged disk):
// incidents open at the stop are then not restored, and the center must
// know (§3.2). It clears once the journal can be read and they are.
const troubleJournalUnreadable = "journal_unreadable"

// restoreOpen reads the open incidents from the journal's index and
// restores them into the engine (a robbery latches until the center
// resolves it, whatever happens to the box). If the journal cannot be read,
// journal_unreadable is raised and restoreOpen is tried again whenever the
// journal's disk works again (retryRestore).
func (d *Daemon) restoreOpen() {
	d.restoreMu.Lock()
	defer d.restoreMu.Unlock()
	open, lastSeq, err := d.store.OpenIncidents()
	if err != nil {
		d.restorePending = true
		d.daemonCondition(engine.ClassTrouble, troubleJournalUnreadable, true,
			"incidents open at the last stop are not restored: "+err.Error())
		return
	}
	d.eng.ContinueSeq(lastSeq)
	if n := d.eng.Restore(open); n > 0 {
		d.log.Warn("incidents restored from the journal", "incidents", n)
	}
	if d.restorePending {
		d.restorePending = false
		d.daemonCondition(engine.ClassTrouble, troubleJournalUnreadable, false, "")
	}
}

// retryRestore is called when the journal's disk works again: a restore
// that could not be done at start is done now.
func (d *Daemon) retryRestore() {
	d.restoreMu.Lock()
	pending := d.restorePending
	d.restoreMu.Unlock()
	if pending {
		d.restoreOpen()
	}
}
