package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// --- 1, 2: floor and end-to-end latency ----------------------------------------

func (b *bench) latency() error {
	step("latency: floor, durable and memory daemons in alternating rounds (%d)", b.rounds)
	rig, err := b.openLatencyRig()
	if err != nil {
		return err
	}
	defer rig.close()
	s, err := b.measureLatency(rig)
	if err != nil {
		return err
	}
	b.loadRSS = append(b.loadRSS, rssOf(rig.dd, "latency daemon (demo config) after "+fmt.Sprint(b.rounds+10)+" robberies"))
	f := b.reportFloor(s.fs)
	b.reportEndToEnd(rig, s, f)
	return nil
}

// latencyRig is what the latency rounds drive: a durable and a memory
// daemon, the center's client pressing on each, and the floor.
type latencyRig struct {
	dd, md *daemon
	c      paho.Client
	pd, pm *presser
	fl     *floor
}

// openLatencyRig starts the rig; on an error, what it had started is
// stopped again.
func (b *bench) openLatencyRig() (*latencyRig, error) {
	mk := func(hall string, extra ...string) (*daemon, error) {
		state := filepath.Join(b.dir, "state-"+hall)
		cfg, err := benchConfig(b.root, b.dir, hall, b.mq.url(), state, "", nil)
		if err != nil {
			return nil, err
		}
		return startDaemon(b.bin, b.dir, cfg, hall, state, true, extra...)
	}
	r := &latencyRig{}
	err := func() (err error) {
		if r.dd, err = mk("bench-durable"); err != nil {
			return err
		}
		if r.md, err = mk("bench-memory", "-outbox", "memory"); err != nil {
			return err
		}
		if r.c, err = connect(b.mq.url(), "center", nil); err != nil {
			return err
		}
		if r.pd, err = newPresser(r.dd, r.c, b.key); err != nil {
			return err
		}
		if r.pm, err = newPresser(r.md, r.c, b.key); err != nil {
			return err
		}
		r.fl, err = newFloor(b.mq.url(), filepath.Join(b.dir, "state-floor"))
		return err
	}()
	if err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// close stops the rig, the last started first.
func (r *latencyRig) close() {
	if r.fl != nil {
		r.fl.close()
	}
	if r.c != nil {
		r.c.Disconnect(100)
	}
	if r.md != nil {
		r.md.stop()
	}
	if r.dd != nil {
		r.dd.stop()
	}
}

// latencySamples are the counted rounds' figures, and the daemons' scrapes
// before (bd, bm) and after (ad, am) them.
type latencySamples struct {
	fs              []floorSample
	durable, memory dist
	bd, bm, ad, am  metrics
}

// measureLatency runs 10 warm-up rounds and then b.rounds counted ones of
// the floor, the durable and the memory daemon, in rotating order.
func (b *bench) measureLatency(r *latencyRig) (latencySamples, error) {
	var s latencySamples
	press := func(p *presser, into *dist, keep bool) error {
		l, err := p.press()
		if err == nil && keep {
			*into = append(*into, l)
		}
		return err
	}
	run := func(which int, keep bool) error {
		switch which {
		case 0:
			f, err := r.fl.sample()
			if err != nil {
				return err
			}
			if keep {
				s.fs = append(s.fs, f)
			}
		case 1:
			return press(r.pd, &s.durable, keep)
		case 2:
			return press(r.pm, &s.memory, keep)
		}
		return nil
	}
	for i := range 10 { // warm-up, not counted
		for w := range 3 {
			if err := run((w+i)%3, false); err != nil {
				return s, err
			}
		}
	}
	r.pd.inside, r.pd.wire, r.pm.inside, r.pm.wire = nil, nil, nil, nil
	var err error
	if s.bd, err = r.dd.scrape(); err != nil {
		return s, err
	}
	if s.bm, err = r.md.scrape(); err != nil {
		return s, err
	}
	// A, B, C, then B, C, A, ...: nobody always goes first.
	for i := range b.rounds {
		for w := range 3 {
			if err := run((w+i)%3, true); err != nil {
				return s, err
			}
		}
	}
	if s.ad, err = r.dd.scrape(); err != nil {
		return s, err
	}
	s.am, err = r.md.scrape()
	return s, err
}

// floorDists are the floor's figures: its parts and their sums.
type floorDists struct {
	fsync, puback, recv dist
	ack, receipt        dist // fsync+puback, fsync+recv
}

// reportFloor adds the floor's rows.
func (b *bench) reportFloor(fs []floorSample) floorDists {
	var f floorDists
	for _, s := range fs {
		f.fsync, f.puback, f.recv = append(f.fsync, s.fsync), append(f.puback, s.puback), append(f.recv, s.recv)
	}
	f.ack, f.receipt = pairSum(f.fsync, f.puback), pairSum(f.fsync, f.recv)
	sec := "floor"
	b.res.add(row{Section: sec, Name: "floor: fdatasync of a 300 B append (state dir fs)", Value: f.fsync.String(), Data: f.fsync.data()})
	b.res.add(row{Section: sec, Name: "floor: bare paho publish 300 B QoS 1 -> PUBACK", Value: f.puback.String(), Data: f.puback.data()})
	b.res.add(row{Section: sec, Name: "floor: bare paho publish -> subscriber receipt", Value: f.recv.String(), Data: f.recv.data()})
	b.res.add(row{Section: sec, Name: "FLOOR (PUBACK) = fdatasync + publish -> PUBACK", Value: f.ack.String(), Data: f.ack.data()})
	b.res.add(row{Section: sec, Name: "FLOOR (receipt) = fdatasync + publish -> receipt", Value: f.receipt.String(), Data: f.receipt.data()})
	return f
}

// reportEndToEnd adds the end-to-end rows: each daemon against the floor.
func (b *bench) reportEndToEnd(r *latencyRig, s latencySamples, f floorDists) {
	sec := "end to end"
	target := "p50 ≤1.25×, p99 ≤2×"
	lat := func(name string, d dist, base dist, baseName string, tgt bool) {
		r50 := msf(d.p50()) / msf(base.p50())
		r99 := msf(d.p99()) / msf(base.p99())
		rw := row{Section: sec, Name: name, Value: d.String(),
			Baseline: fmt.Sprintf("%s p50 %s p99 %s", baseName, fmtMS(base.p50()), fmtMS(base.p99())),
			Ratio:    fmt.Sprintf("p50 %.2f× p99 %.2f×", r50, r99), Data: d.data()}
		rw.Data["ratio_p50"], rw.Data["ratio_p99"] = r50, r99
		if tgt {
			rw.Target, rw.Met = target, met(r50 <= 1.25 && r99 <= 2)
		}
		b.res.add(rw)
	}
	lat("hallguard durable: sim edge -> subscriber receipt", s.durable, f.receipt, "FLOOR(receipt)", true)
	hist := func(name string, before, after metrics, base dist, baseName string, tgt bool) {
		h50 := histQuantile(before, after, "hallguard_report_latency_seconds", 0.5) * 1000
		h99 := histQuantile(before, after, "hallguard_report_latency_seconds", 0.99) * 1000
		n := after.sum("hallguard_report_latency_seconds_count") - before.sum("hallguard_report_latency_seconds_count")
		r50, r99 := h50/msf(base.p50()), h99/msf(base.p99())
		rw := row{Section: sec, Name: name, Value: fmt.Sprintf("p50 %.2f  p99 %.2f ms (histogram, n=%.0f)", h50, h99, n),
			Baseline: fmt.Sprintf("%s p50 %s p99 %s", baseName, fmtMS(base.p50()), fmtMS(base.p99())),
			Ratio:    fmt.Sprintf("p50 %.2f× p99 %.2f×", r50, r99),
			Data:     map[string]any{"p50_ms": h50, "p99_ms": h99, "n": n, "ratio_p50": r50, "ratio_p99": r99}}
		if tgt {
			rw.Target, rw.Met = target, met(r50 <= 1.25 && r99 <= 2)
		}
		b.res.add(rw)
	}
	hist("hallguard durable: event -> PUBACK", s.bd, s.ad, f.ack, "FLOOR(PUBACK)", true)
	lat("hallguard -outbox memory: sim edge -> receipt", s.memory, f.recv, "floor publish->receipt", false)
	hist("hallguard -outbox memory: event -> PUBACK", s.bm, s.am, f.puback, "floor publish->PUBACK", false)
	split := func(name string, d, base dist, baseName string) {
		b.res.add(row{Section: sec, Name: name, Value: d.String(),
			Baseline: fmt.Sprintf("%s p50 %s", baseName, fmtMS(base.p50())), Ratio: ratio(msf(d.p50()), msf(base.p50())) + " (p50)", Data: d.data()})
	}
	split("  durable: occurred_at -> sent_at (engine, journal, sender)", r.pd.inside, f.fsync, "floor fdatasync")
	split("  durable: sent_at -> receipt (JSON, paho, mosquitto)", r.pd.wire, f.recv, "floor publish->receipt")
	split("  memory: occurred_at -> sent_at", r.pm.inside, f.fsync, "floor fdatasync")
	split("  memory: sent_at -> receipt", r.pm.wire, f.recv, "floor publish->receipt")
	b.reportDurableCost(s, f)
}

// reportDurableCost adds what the durable outbox costs over the memory one,
// and the journal commits behind it.
func (b *bench) reportDurableCost(s latencySamples, f floorDists) {
	sec := "end to end"
	diff := msf(s.durable.p50()) - msf(s.memory.p50())
	b.res.add(row{Section: sec, Name: "durable outbox cost: durable p50 - memory p50", Value: fmt.Sprintf("%.2f ms", diff),
		Baseline: fmt.Sprintf("floor fdatasync p50 %s", fmtMS(f.fsync.p50())), Ratio: fmt.Sprintf("%.2f×", diff/msf(f.fsync.p50())),
		Data: map[string]any{"ms": diff, "fsync_p50_ms": msf(f.fsync.p50())}})
	fsyncs := s.ad.sum("hallguard_journal_fsync_duration_seconds_count") - s.bd.sum("hallguard_journal_fsync_duration_seconds_count")
	fsyncSum := s.ad.sum("hallguard_journal_fsync_duration_seconds_sum") - s.bd.sum("hallguard_journal_fsync_duration_seconds_sum")
	if fsyncs > 0 {
		b.res.add(row{Section: sec, Name: "durable daemon: journal commits per robbery round", Value: fmt.Sprintf("%.2f commits, mean %.2f ms each (hallguard_journal_fsync_duration_seconds)", fsyncs/float64(b.rounds), fsyncSum/fsyncs*1000),
			Baseline: fmt.Sprintf("floor fdatasync mean %.2f ms", meanMS(f.fsync)), Ratio: fmt.Sprintf("%.2f×", fsyncSum/fsyncs*1000/meanMS(f.fsync)),
			Data: map[string]any{"commits_per_round": fsyncs / float64(b.rounds), "commit_mean_ms": fsyncSum / fsyncs * 1000}})
	}
}

func meanMS(d dist) float64 {
	var s float64
	for _, x := range d {
		s += msf(x)
	}
	return s / float64(len(d))
}

type rssNote struct {
	what   string
	mib    float64
	detail string // anon, file, and the journal's mmap
}

func rssOf(d *daemon, what string) rssNote {
	v, err := rssMiB(d.p.pid())
	if err != nil {
		warnf("rss of %s: %v", what, err)
	}
	return rssNote{what, v, rssSplit(d.p.pid()) + fmt.Sprintf(", of which hallguard.db mmap %.1f", mappedMiB(d.p.pid(), "hallguard.db"))}
}

// --- 3: counter throughput -----------------------------------------------------

func (b *bench) pulses() error {
	step("pulses: ramp of 1..%d counters, %s each", maxCounters, b.pulseStep)
	hall := "bench-pulses"
	state := filepath.Join(b.dir, "state-"+hall)
	cfg, err := benchConfig(b.root, b.dir, hall, b.mq.url(), state, "", pulseConfigEdit)
	if err != nil {
		return err
	}
	if c, _ := os.ReadFile(cfg); !strings.Contains(string(c), "id: "+counterIDs()[maxCounters-1]+",") || strings.Count(string(c), "debounce: "+pulseDebounce) != maxCounters+1 {
		return fmt.Errorf("pulse config: the counters of configs/demo.yaml were not found as expected (has it changed?): %s", cfg)
	}
	d, err := startDaemon(b.bin, b.dir, cfg, hall, state, true)
	if err != nil {
		return err
	}
	defer d.stop()
	// Baseline for the CPU figure, from the same broker, before the ramp.
	async, err := runFloorAsync(b.mq.url(), b.asyncN(), asyncInflight)
	if err != nil {
		return err
	}
	b.async = append(b.async, async)
	steps, err := rampPulses(d, b.pulseStep)
	if err != nil {
		return err
	}
	b.loadRSS = append(b.loadRSS, rssOf(d, fmt.Sprintf("pulse daemon (%d counters) after the ramp", maxCounters+1)))
	sec := "counter"
	best := -1
	for i, st := range steps {
		if st.lost() == 0 && (best < 0 || st.absorbed() > steps[best].absorbed()) {
			best = i
		}
	}
	for i, st := range steps {
		// The ramp's steps; the best one without a loss carries the target.
		name := fmt.Sprintf("  ramp: %d counter(s) driven at once", st.counters)
		target, ok := "", ""
		if i == best {
			name = fmt.Sprintf("PULSES ABSORBED, none lost (%d counters at once)", st.counters)
			target, ok = "arrivals_total = pulses sent", met(st.lost() == 0)
		}
		b.res.add(row{Section: sec, Name: name,
			Value:    fmt.Sprintf("%.0f pulses/s (sent %d, arrived %d, lost %d)%s", st.absorbed(), st.sent, st.arrived, st.lost(), st.retriedNote()),
			Baseline: fmt.Sprintf("offered %.0f/s", st.offered()), Ratio: fmt.Sprintf("%.3f×", st.absorbed()/st.offered()),
			Target: target, Met: ok,
			Data: map[string]any{"counters": st.counters, "sent": st.sent, "arrived": st.arrived, "seconds": st.seconds,
				"cpu_s": st.cpu.nanos, "cpu_ticks_s": st.cpu.ticks, "lost_edges": st.lostEdge, "retried": st.retried, "first_run_lost": st.firstLost}})
	}
	if best < 0 {
		b.res.add(row{Section: sec, Name: "PULSES ABSORBED, none lost", Value: "every step lost pulses", Target: "arrivals_total = pulses sent", Met: met(false)})
	} else {
		st := steps[best]
		per := st.cpu.nanos / float64(st.sent) * 1000 * 1000 // ms per 1000 pulses
		perTicks := st.cpu.ticks / float64(st.sent) * 1000 * 1000
		base := b.asyncCPUPer1000()
		b.res.add(row{Section: sec, Name: fmt.Sprintf("daemon CPU per 1000 pulses (at %.0f/s)", st.absorbed()),
			Value:    fmt.Sprintf("%.1f ms (utime+stime %.0f ms)", per, perTicks),
			Baseline: fmt.Sprintf("floor client %.1f ms per 1000 QoS 1 publishes", base), Ratio: ratio(per, base),
			Data: map[string]any{"ms_per_1000": per, "ticks_ms_per_1000": perTicks, "baseline_ms_per_1000_publishes": base}})
	}
	b.res.note("counters: debounce %s on every counter (demo.yaml: 5 ms), %d arrival counters; each driven by `pulse ID %s` + %s pause on its own control connection; CPU includes the daemon's sim control socket", pulseDebounce, maxCounters, pulseWidth, pulseGap)
	return nil
}

// rampPulses drives 1, 2, 4 ... maxCounters counters at once, a step
// each, up to the first step that loses a pulse twice running.
func rampPulses(d *daemon, each time.Duration) ([]pulseStep, error) {
	var steps []pulseStep
	for n := 1; n <= maxCounters; n *= 2 {
		st, err := runPulseStep(d, n, each)
		if err != nil {
			return nil, err
		}
		step("  %2d counters: sent %d, arrived %d (%.0f/s), CPU %.3f s", n, st.sent, st.arrived, st.offered(), st.cpu.nanos)
		if st.lost() != 0 {
			// The machine is shared: a pulse lost once may be a neighbour's
			// doing. The step is run once more, and that run counts.
			first := st
			if st, err = runPulseStep(d, n, each); err != nil {
				return nil, err
			}
			st.retried, st.firstLost = true, first.lost()
			step("  %2d counters, again: sent %d, arrived %d (%.0f/s), CPU %.3f s", n, st.sent, st.arrived, st.offered(), st.cpu.nanos)
		}
		steps = append(steps, st)
		if st.lost() != 0 {
			break
		}
	}
	return steps, nil
}

const asyncInflight = 32 // hallguard: 16 reports in flight, two publishes each

func (b *bench) asyncN() int {
	if b.quick {
		return 2000
	}
	return 10000
}

func (b *bench) asyncCPUPer1000() float64 {
	var v []float64
	for _, a := range b.async {
		v = append(v, a.CPU/float64(a.Msgs)*1000*1000)
	}
	return median(v)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// --- 4, 5: outbox drain, with the idle window alongside ---------------------------

func (b *bench) drainAndIdle() error {
	// The idle daemon runs on a broker of its own, so that the outage of
	// the drain does not touch it; nothing drives it.
	idleMQ, _, err := newMosquitto(b.root, b.dir, "mosquitto-idle")
	if err != nil {
		return err
	}
	defer idleMQ.stop()
	idleDone := make(chan idleOut, 1)
	go func() { idleDone <- b.measureIdle(idleMQ) }()

	dr, err := b.drain()
	if err != nil {
		<-idleDone
		return err
	}
	step("idle: waiting for the %s idle window to end", b.idle)
	io := <-idleDone
	if io.err != nil {
		return io.err
	}
	b.reportDrain(dr)
	b.reportFootprint(io)
	return nil
}

// idleOut is what the idle window measured.
type idleOut struct {
	rss, rssBase, rssCross float64
	rssSplit, crossSplit   string
	cpu, cpuBase, cpuCross cpuSample
	cross                  bool
	err                    error
}

// measureIdle measures an idle daemon on idleMQ, beside a bare paho client and
// (where make cross built one for this machine) the static binary.
func (b *bench) measureIdle(idleMQ *mosquitto) (o idleOut) {
	start := func(bin, hall string) (*daemon, error) {
		state := filepath.Join(b.dir, "state-"+hall)
		cfg, err := benchConfig(b.root, b.dir, hall, idleMQ.url(), state, "", nil)
		if err != nil {
			return nil, err
		}
		return startDaemon(bin, b.dir, cfg, hall, state, true)
	}
	d, err := start(b.bin, "bench-idle")
	if err != nil {
		o.err = err
		return o
	}
	defer d.stop()
	// The static release binary of make cross (CGO_ENABLED=0) for this
	// machine, side by side: make build links libc dynamically.
	var dc *daemon
	if cross := filepath.Join(b.dist, "hallguard-linux-"+runtime.GOARCH); runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64" {
		if _, err := os.Stat(cross); err == nil {
			if dc, err = start(cross, "bench-idle-cross"); err != nil {
				o.err = err
				return o
			}
			defer dc.stop()
			o.cross = true
		}
	}
	readyAt := d.p.started.Add(d.ready)
	fc, err := startIdleClient(b.dir, idleMQ.url())
	if err != nil {
		o.err = err
		return o
	}
	defer fc.stop(5 * time.Second)
	time.Sleep(time.Until(readyAt.Add(10 * time.Second)))
	o.rss, _ = rssMiB(d.p.pid())
	o.rssSplit = rssSplit(d.p.pid())
	o.rssBase, _ = rssMiB(fc.pid())
	var x0 cpuSample
	if dc != nil {
		o.rssCross, _ = rssMiB(dc.p.pid())
		o.crossSplit = rssSplit(dc.p.pid())
		x0 = sampleCPU(dc.p.pid())
	}
	c0, f0 := sampleCPU(d.p.pid()), sampleCPU(fc.pid())
	time.Sleep(b.idle)
	o.cpu, o.cpuBase = sampleCPU(d.p.pid()).sub(c0), sampleCPU(fc.pid()).sub(f0)
	if dc != nil {
		o.cpuCross = sampleCPU(dc.p.pid()).sub(x0)
	}
	if d.p.exited() {
		o.err = fmt.Errorf("idle daemon exited: %s", d.p.logTail(10))
	}
	return o
}

// reportDrain adds the drain's rows, against the floor's asynchronous
// publish rate before and after it.
func (b *bench) reportDrain(dr drainResult) {
	sec := "drain"
	asyncs := b.async[len(b.async)-2:]
	var rates []float64
	for _, a := range asyncs {
		rates = append(rates, a.Rate)
	}
	base := median(rates)
	b.res.add(row{Section: sec, Name: "backlog: incidents raised during the broker outage", Value: fmt.Sprintf("%d reports of ~%d B (%.0f/s for %s), outbox peak %d", dr.raised, dr.payload, b.drainRate, dr.outage.Round(time.Second), dr.pendingPeak),
		Data: map[string]any{"reports": dr.raised, "outage_s": dr.outage.Seconds(), "pending_peak": dr.pendingPeak, "payload_bytes": dr.payload}})
	b.res.add(row{Section: sec, Name: "broker back -> daemon reconnected", Value: fmt.Sprintf("%.2f s (max_reconnect 1s)", dr.reconnect.Seconds()),
		Data: map[string]any{"s": dr.reconnect.Seconds()}})
	b.res.add(row{Section: sec, Name: "broker back -> outbox empty (all PUBACKed)", Value: fmt.Sprintf("%.2f s (reconnected -> empty %.3f s)", dr.drained.Seconds(), dr.drainAck.Seconds()),
		Data: map[string]any{"s": dr.drained.Seconds(), "after_connect_s": dr.drainAck.Seconds()}})
	b.res.add(row{Section: sec, Name: "DRAIN RATE, reports PUBACKed (2 publishes each)", Value: fmt.Sprintf("%.0f reports/s", dr.ackRate()),
		Baseline: fmt.Sprintf("floor async %.0f msgs/s (%d in flight)", base, asyncInflight), Ratio: ratio(dr.ackRate(), base),
		Target: "≥0.50×", Met: met(dr.ackRate()/base >= 0.5),
		Data: map[string]any{"reports_per_s": dr.ackRate(), "floor_msgs_per_s": base, "floor_runs": rates}})
	if ar := b.asyncReport; ar.Msgs > 0 {
		perReport := ar.Rate / 2 // a report is two publishes
		b.res.add(row{Section: sec, Name: fmt.Sprintf("  diagnostic: floor client, report-shaped (2 publishes of %d B)", ar.Size), Value: fmt.Sprintf("%.0f reports/s (%.0f msgs/s)", perReport, ar.Rate),
			Baseline: fmt.Sprintf("drain %.0f reports/s", dr.ackRate()), Ratio: ratio(dr.ackRate(), perReport) + " (drain/this)",
			Data: map[string]any{"msgs_per_s": ar.Rate, "reports_per_s": perReport, "size": ar.Size}})
	}
	b.res.add(row{Section: sec, Name: "drain rate at the subscriber (first -> last receipt)", Value: fmt.Sprintf("%.0f reports/s (%d of %d received, last %.2f s after broker back)", dr.recvRate(), dr.received, dr.raised, dr.lastRecv.Seconds()),
		Baseline: fmt.Sprintf("floor async %.0f msgs/s", base), Ratio: ratio(dr.recvRate(), base),
		Data: map[string]any{"reports_per_s": dr.recvRate(), "received": dr.received, "last_s": dr.lastRecv.Seconds()}})
}

// reportFootprint adds the idle window's rows and the RSS after each load.
func (b *bench) reportFootprint(io idleOut) {
	sec := "footprint"
	b.res.add(row{Section: sec, Name: "RSS idle, 10 s after READY (make build, cgo)", Value: fmt.Sprintf("%.1f MiB (%s)", io.rss, io.rssSplit),
		Baseline: fmt.Sprintf("idle bare paho client %.1f MiB", io.rssBase), Ratio: ratio(io.rss, io.rssBase),
		Target: "≤15 MiB", Met: met(io.rss <= 15), Data: map[string]any{"mib": io.rss, "split": io.rssSplit, "baseline_mib": io.rssBase}})
	if io.cross {
		b.res.add(row{Section: sec, Name: "RSS idle, 10 s after READY (make cross " + runtime.GOARCH + ", static)", Value: fmt.Sprintf("%.1f MiB (%s)", io.rssCross, io.crossSplit),
			Baseline: fmt.Sprintf("idle bare paho client %.1f MiB", io.rssBase), Ratio: ratio(io.rssCross, io.rssBase),
			Target: "≤15 MiB", Met: met(io.rssCross <= 15), Data: map[string]any{"mib": io.rssCross, "split": io.crossSplit, "cpu_s": io.cpuCross.ticks, "schedstat_s": io.cpuCross.nanos}})
	}
	for _, r := range b.loadRSS {
		b.res.add(row{Section: sec, Name: "RSS after load: " + r.what, Value: fmt.Sprintf("%.1f MiB (%s)", r.mib, r.detail),
			Baseline: fmt.Sprintf("idle bare paho client %.1f MiB", io.rssBase), Ratio: ratio(r.mib, io.rssBase),
			Data: map[string]any{"mib": r.mib, "detail": r.detail}})
	}
	perMin := io.cpu.ticks * 60 / b.idle.Seconds()
	b.res.add(row{Section: sec, Name: fmt.Sprintf("CPU over %s idle (utime+stime)", b.idle), Value: fmt.Sprintf("%.3f s (schedstat %.4f s), %.3f s/min", io.cpu.ticks, io.cpu.nanos, perMin),
		Baseline: fmt.Sprintf("idle bare paho client %.3f s (schedstat %.4f s)", io.cpuBase.ticks, io.cpuBase.nanos), Ratio: ratio(io.cpu.nanos, io.cpuBase.nanos) + " (schedstat)",
		Target: "≤0.05 s per idle minute", Met: met(perMin <= 0.05),
		Data: map[string]any{"cpu_s": io.cpu.ticks, "schedstat_s": io.cpu.nanos, "per_min_s": perMin, "baseline_cpu_s": io.cpuBase.ticks, "baseline_schedstat_s": io.cpuBase.nanos}})
	b.res.note("idle: its own daemon and bare paho client on a second mosquitto, measured while the drain's outage runs (CPU time is per process; nothing drives them)")
}

func (b *bench) drain() (drainResult, error) {
	var r drainResult
	n := int(math.Ceil(b.drainRate*b.outage.Seconds())) + 20
	step("drain: %d bench playbooks and inputs; outage %s at %.0f incidents/s", n, b.outage, b.drainRate)
	d, err := b.startDrainDaemon(n)
	if err != nil {
		return r, err
	}
	defer d.stop()
	sim, err := dialSim(d.sock())
	if err != nil {
		return r, err
	}
	defer sim.close()
	before, err := d.scrape()
	if err != nil {
		return r, err
	}
	if err := b.floorAsync(); err != nil {
		return r, err
	}
	if err := b.raiseDuringOutage(d, sim, n, &r); err != nil {
		return r, err
	}

	step("drain: broker back")
	if err := b.mq.start(); err != nil {
		return r, err
	}
	up := time.Now()
	// The center's subscriber first, so that it sees the whole backlog (the
	// daemon's next reconnect attempt is up to max_reconnect away).
	c, err := connect(b.mq.url(), "drain-center", nil)
	if err != nil {
		return r, err
	}
	defer c.Disconnect(100)
	in, err := subscribe(c, d.root()+"/alerts/+")
	if err != nil {
		return r, err
	}
	subAt := time.Since(up)
	if err := waitDrained(d, up, &r); err != nil {
		return r, err
	}
	if subAt > r.reconnect {
		warnf("drain: the subscriber subscribed %.3f s after the broker came back, after the daemon reconnected (%.3f s): it may miss reports", subAt.Seconds(), r.reconnect.Seconds())
	}
	collectBacklog(in, up, &r)
	after, err := d.scrape()
	if err != nil {
		return r, err
	}
	r.published = after.sum("hallguard_reports_published_total") - before.sum("hallguard_reports_published_total")
	if int(r.published) != r.raised {
		warnf("drain: %d raised, %.0f reports published", r.raised, r.published)
	}
	b.loadRSS = append(b.loadRSS, rssOf(d, fmt.Sprintf("drain daemon (drain config: %d inputs) after the drain", n+10)))
	step("drain: %d reports; reconnect %.2f s, empty %.3f s later (%.0f/s); subscriber %d received", r.raised, r.reconnect.Seconds(), r.drainAck.Seconds(), r.ackRate(), r.received)
	if err := b.floorAsync(); err != nil {
		return r, err
	}
	// Not the floor of the issue, a diagnostic: the same client publishing
	// messages the size of these reports.
	if r.payload > 0 {
		if b.asyncReport, err = runFloorAsyncSize(b.mq.url(), b.asyncN(), asyncInflight, r.payload); err != nil {
			return r, err
		}
	}
	return r, nil
}

// startDrainDaemon starts the drain's daemon: the demo hall with n bench
// inputs, each raising a playbook of its own.
func (b *bench) startDrainDaemon(n int) (*daemon, error) {
	pbDir := filepath.Join(b.dir, "playbooks-drain")
	if err := drainPlaybooks(b.root, pbDir, n); err != nil {
		return nil, err
	}
	hall := "bench-drain"
	state := filepath.Join(b.dir, "state-"+hall)
	cfg, err := benchConfig(b.root, b.dir, hall, b.mq.url(), state, "  max_reconnect: 1s\n", drainConfigEdit(pbDir, n))
	if err != nil {
		return nil, err
	}
	if c, _ := os.ReadFile(cfg); !strings.Contains(string(c), "id: "+drainInput(n)+",") || !strings.Contains(string(c), "playbooks_dir: "+pbDir) {
		return nil, fmt.Errorf("drain config: inputs not added after box-tamper (has configs/demo.yaml changed?): %s", cfg)
	}
	return startDaemon(b.bin, b.dir, cfg, hall, state, true)
}

// floorAsync runs the floor's asynchronous publish rate once more.
func (b *bench) floorAsync() error {
	a, err := runFloorAsync(b.mq.url(), b.asyncN(), asyncInflight)
	if err != nil {
		return err
	}
	b.async = append(b.async, a)
	return nil
}

// raiseDuringOutage stops the broker, presses the drain's inputs at
// b.drainRate for b.outage, and waits until the outbox holds them all.
func (b *bench) raiseDuringOutage(d *daemon, sim *simConn, n int, r *drainResult) error {
	step("drain: broker down (SIGTERM to mosquitto pid %d)", b.mq.p.pid())
	if err := b.mq.stop(); err != nil {
		return err
	}
	if err := d.waitHealth(10*time.Second, func(h health) bool { return !h.Connected }); err != nil {
		return err
	}
	down := time.Now()
	interval := time.Duration(float64(time.Second) / b.drainRate)
	next := down
	for i := 1; time.Since(down) < b.outage && i <= n; i++ {
		if err := sim.do("press " + drainInput(i)); err != nil {
			return err
		}
		r.raised++
		next = next.Add(interval)
		time.Sleep(time.Until(next))
	}
	time.Sleep(time.Until(down.Add(b.outage)))
	r.outage = time.Since(down)
	return d.waitHealth(10*time.Second, func(h health) bool { r.pendingPeak = h.Pending; return h.Pending >= r.raised })
}

// waitDrained waits (60 s at most) until the daemon, reconnected after the
// broker came back at up, has an empty outbox, and notes when.
func waitDrained(d *daemon, up time.Time, r *drainResult) error {
	var connected, empty time.Time
	for deadline := up.Add(60 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		h, err := d.health()
		now := time.Now()
		if err == nil && h.Connected && connected.IsZero() {
			connected = now
		}
		if err == nil && h.Connected && h.Pending == 0 {
			empty = now
			break
		}
		if now.After(deadline) {
			return fmt.Errorf("outbox not empty 60 s after the broker came back: %+v", h)
		}
	}
	r.reconnect, r.drained, r.drainAck = connected.Sub(up), empty.Sub(up), empty.Sub(connected)
	return nil
}

// collectBacklog waits (30 s at most) for the subscriber to have every
// raised report and notes how many came, their mean size, and when the
// first and the last arrived after the broker came back at up.
func collectBacklog(in *inbox, up time.Time, r *drainResult) {
	seen := map[string]time.Time{}
	var bytes, count int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, m := range in.All() {
			if rep, ok := parseReport(m); ok && rep.Event == "raised" {
				if _, dup := seen[rep.ID]; !dup {
					seen[rep.ID] = m.At
				}
			}
		}
		if len(seen) >= r.raised {
			break
		}
	}
	r.received = len(seen)
	for _, m := range in.All() {
		bytes += len(m.Payload)
		count++
	}
	if count > 0 {
		r.payload = bytes / count
	}
	first, last := time.Time{}, time.Time{}
	for _, at := range seen {
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	r.firstRecv, r.lastRecv = first.Sub(up), last.Sub(up)
}

// --- 5: start -> READY, binary sizes ------------------------------------------

func (b *bench) startup() error {
	step("startup: %d starts, alternating with `hallguard version`", b.starts)
	hall := "bench-start"
	state := filepath.Join(b.dir, "state-"+hall)
	cfg, err := benchConfig(b.root, b.dir, hall, b.mq.url(), state, "", nil)
	if err != nil {
		return err
	}
	var ready, version dist
	for i := -1; i < b.starts; i++ { // i = -1: creates the journal, not counted
		t0 := time.Now()
		if out, err := exec.Command(b.bin, "version").CombinedOutput(); err != nil {
			return fmt.Errorf("hallguard version: %v %s", err, out)
		}
		v := time.Since(t0)
		d, err := startDaemon(b.bin, b.dir, cfg, hall, state, false)
		if err != nil {
			return err
		}
		if err := d.stop(); err != nil {
			return err
		}
		if i >= 0 {
			ready, version = append(ready, d.ready), append(version, v)
		}
	}
	r50 := msf(ready.p50()) / msf(version.p50())
	b.res.add(row{Section: "footprint", Name: "start -> READY=1 (sd_notify, our NOTIFY_SOCKET)", Value: ready.String(),
		Baseline: fmt.Sprintf("`hallguard version` exec -> exit p50 %s ms", fmtMS(version.p50())), Ratio: fmt.Sprintf("p50 %.2f×", r50),
		Target: "≤50 ms (median)", Met: met(msf(ready.p50()) <= 50),
		Data: map[string]any{"ready": ready.data(), "version": version.data()}})
	return nil
}

func (b *bench) sizes() {
	for _, arch := range []string{"amd64", "arm64", "armv7"} {
		p := filepath.Join(b.dist, "hallguard-linux-"+arch)
		st, err := os.Stat(p)
		rw := row{Section: "footprint", Name: "stripped binary, linux/" + arch + " (make cross)"}
		if err != nil {
			rw.Value = "missing (run make cross)"
		} else {
			mib := float64(st.Size()) / (1 << 20)
			rw.Value = fmt.Sprintf("%.2f MiB (%d bytes)", mib, st.Size())
			rw.Data = map[string]any{"bytes": st.Size(), "mib": mib}
			if arch == "arm64" {
				rw.Target, rw.Met = "≤12 MiB", met(mib <= 12)
			}
		}
		b.res.add(rw)
	}
}
