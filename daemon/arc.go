package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/hallguard/hallguard/arc"
	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/devices/clock"
)

// ARCQueueFile is the DC-09 lane's queue in the state directory.
const ARCQueueFile = "arc.db"

// ARCOptions turns the config's arc section into the transmitter's
// options (shared with `hallguard arc test`). The key file is read here,
// relative to the config's folder like every file the config names: one
// that others can read stops the start.
func ARCOptions(cfg *config.Config) (arc.Options, error) {
	a := cfg.ARC
	o := arc.Options{Account: a.Account, Receiver: a.Receiver, Line: a.Line, AckTimeout: a.AckTimeout.D(),
		Mapping: &arc.Mapping{Codes: a.Codes, Unmapped: a.Unmapped}}
	if a.Retries != nil {
		o.Retries = *a.Retries
	}
	if a.KeyFile != "" {
		k, err := arc.LoadKey(cfg.Path(a.KeyFile))
		if err != nil {
			return o, fmt.Errorf("daemon: arc.key_file: %w", err)
		}
		o.Key = k
	}
	for _, in := range cfg.Inputs {
		o.Mapping.Inputs = append(o.Mapping.Inputs, arc.Input{ID: in.ID, Kind: in.Kind})
	}
	for i, r := range a.Receivers {
		p := arc.Path{Name: r.Name, Network: r.Protocol, Addr: r.Address,
			PollInterval: r.PollInterval.D(), FailAfter: r.FailAfter.D(), TestInterval: a.TestInterval.D()}
		if i > 0 {
			// EN 50136-1: once the paths before it have failed, a
			// secondary is supervised at the primary's times.
			p.PollIntervalAlone, p.FailAfterAlone = a.Receivers[0].PollInterval.D(), a.Receivers[0].FailAfter.D()
		}
		o.Paths = append(o.Paths, p)
	}
	return o, nil
}

// startARC starts the DC-09 transmitter when the config has an arc
// section; stop closes it and its queue. Its path failures are raised as
// trouble, which reaches the center on MQTT and on the other receivers.
func (d *Daemon) startARC(ctx context.Context) (stop func(), err error) {
	if !d.cfg.ARC.Enabled() {
		return func() {}, nil
	}
	o, err := ARCOptions(d.cfg)
	if err != nil {
		return nil, err
	}
	if o.Key == nil {
		d.log.Warn("arc.key_file not set: DC-09 messages go to the ARC in clear")
	}
	q, err := arc.OpenBoltQueue(filepath.Join(d.cfg.StateDir, ARCQueueFile))
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	var mu sync.Mutex
	failed := map[string]bool{}
	o.Clock, o.Queue, o.Logger, o.Registerer = d.clk, q, d.log, d.metrics.Registry
	o.OnPathState = func(path string, s arc.PathState, detail string) {
		mu.Lock()
		was := failed[path]
		failed[path] = s == arc.PathFailed
		mu.Unlock()
		if was != (s == arc.PathFailed) {
			d.daemonCondition(engine.ClassTrouble, arc.KindARCPathFailed+":"+path, s == arc.PathFailed, "DC-09 receiver "+path+": "+detail)
		}
	}
	o.OnQueueTrouble = func(active bool, detail string) {
		d.daemonCondition(engine.ClassTrouble, arc.KindARCQueue, active, "DC-09 queue "+ARCQueueFile+": "+detail)
	}
	o.OnUndelivered = func(active bool, detail string) {
		// The center hears of it on MQTT at once; the ARC gets 1354 when a
		// receiver answers again.
		d.daemonCondition(engine.ClassTrouble, arc.KindARCUndelivered, active, detail)
	}
	o.OnAck = func(ev arc.Event, path string, rtt time.Duration) {
		// §3.5: the archive keeps when, and by which receiver, the ARC
		// acknowledged each event.
		d.rec.add("arc", "", "", false, map[string]any{"event": ev.ID, "format": ev.Format, "qualifier": ev.Qualifier,
			"code": ev.Code, "zone": ev.Zone, "path": path, "rtt_s": rtt.Seconds()})
	}
	t, err := arc.New(o)
	if err != nil {
		q.Close()
		return nil, fmt.Errorf("daemon: %w", err)
	}
	d.arcCatchUp(t, q)
	if err := t.Start(ctx); err != nil {
		q.Close()
		return nil, fmt.Errorf("daemon: %w", err)
	}
	d.arc.Store(t)
	// A broker down from the start never calls OnConnect(false): the
	// watch starts now, and the first connection stops it.
	d.mqttPath(d.pub.Connected())
	d.log.Info("DC-09 transmitter started", "category", d.cfg.ARC.Category, "receivers", len(o.Paths), "encrypted", o.Key != nil)
	return func() {
		d.arc.Store(nil)
		t.Close()
		if err := q.Close(); err != nil {
			d.log.Error("arc queue close", "err", err)
		}
	}, nil
}

// arcCatchUp hands t the reports the journal committed after the lane's
// mark: a crash between the journal's commit and arc.db's loses nothing
// on the DC-09 path (issue #16). A new lane starts at the journal's mark
// (a hall that adds an ARC does not send it its history); a lane ahead of
// the journal (its commit came first) is brought back to it.
func (d *Daemon) arcCatchUp(t *arc.Transmitter, q *arc.BoltQueue) {
	mark, known, err := q.ReportMark()
	if err != nil {
		d.log.Error("DC-09 lane: report mark not read", "err", err)
		return
	}
	_, high, err := d.store.OpenIncidents()
	if err != nil {
		d.log.Error("DC-09 lane: journal not read; reports of the last run may be missing on the DC-09 path", "err", err)
		return
	}
	if !known || mark > high {
		if err := q.MarkReports(high); err != nil {
			d.log.Error("DC-09 lane: report mark not stored", "err", err)
		}
		return
	}
	if mark == high {
		return
	}
	n := 0
	err = d.store.Reports(mark, func(r engine.Report) error {
		t.Report(r)
		n++
		return nil
	})
	if err != nil {
		d.log.Error("DC-09 lane: journal not read; reports of the last run may be missing on the DC-09 path", "err", err)
	}
	d.log.Warn("DC-09 lane: reports journalled before the last stop handed to it again", "reports", n, "after", mark, "to", high)
}

// arcReport and arcCondition hand an effect to the DC-09 path, if any.
func (d *Daemon) arcReport(r engine.Report) {
	if t := d.arc.Load(); t != nil {
		t.Report(r)
	}
}

func (d *Daemon) arcCondition(c engine.Condition) {
	if t := d.arc.Load(); t != nil {
		t.Condition(c)
	}
}

// mqttPathWatch raises mqtt_path_failed when the MQTT path stays down
// longer than the primary receiver's fail time, so the ARC learns over
// DC-09 that the center no longer hears the hall on MQTT (EN 50136 dual
// path: a failed path is reported on the other).
type mqttPathWatch struct {
	mu     sync.Mutex
	timer  clock.Timer
	raised bool
}

func (d *Daemon) mqttPath(up bool) {
	if !d.cfg.ARC.Enabled() || len(d.cfg.ARC.Receivers) == 0 {
		return
	}
	w := &d.mqttWatch
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	if up {
		if w.raised {
			w.raised = false
			d.loops.Go(func() { d.daemonCondition(engine.ClassTrouble, arc.KindMQTTPathFailed, false, "MQTT connected") })
		}
		return
	}
	budget := d.cfg.ARC.Receivers[0].FailAfter.D()
	w.timer = d.clk.AfterFunc(budget, func() {
		w.mu.Lock()
		w.raised = true
		w.mu.Unlock()
		d.daemonCondition(engine.ClassTrouble, arc.KindMQTTPathFailed, true, fmt.Sprintf("MQTT disconnected for %s", budget))
	})
}
