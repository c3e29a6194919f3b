package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/console"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/daemon/journal"
	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/devices/gpiocdev"
	"github.com/hallguard/hallguard/devices/periph"
	"github.com/hallguard/hallguard/devices/sim"
	"github.com/hallguard/hallguard/mqtt"
	"github.com/hallguard/hallguard/mqtt/broker"
	"github.com/hallguard/hallguard/mqtt/command"
)

// BackendFactory opens a devices backend for a config.
type BackendFactory func(cfg *config.Config, clk clock.Clock) (devices.Backend, error)

// Backends is the explicit map of backends by the config's backend name.
func Backends() map[string]BackendFactory {
	return map[string]BackendFactory{
		"gpiocdev": func(cfg *config.Config, _ clock.Clock) (devices.Backend, error) {
			return gpiocdev.New(gpiocdev.Options{Consumer: "hallguard", DefaultChip: cfg.GPIO.Chip,
				EventBuffer: cfg.GPIO.EventBuffer, SoftwareDebounce: cfg.GPIO.Debounce != "kernel"})
		},
		"periph": func(*config.Config, clock.Clock) (devices.Backend, error) {
			return periph.New(periph.Options{})
		},
		"sim": func(_ *config.Config, clk clock.Clock) (devices.Backend, error) {
			return sim.New(clk), nil
		},
	}
}

// Options are Run's optional collaborators.
type Options struct {
	Logger *slog.Logger
	Clock  clock.Clock
	// Backends overrides the backend map (tests).
	Backends map[string]BackendFactory
	// Ready is called once inputs are open and the engine runs.
	Ready func(*Daemon)
	// Adjust is applied to the config again on every reload (the command
	// line's overrides of the file).
	Adjust func(*config.Config)
	// MemoryOutbox keeps reports in memory only, not on disk: a report is
	// then lost if the daemon dies before the broker acknowledged it. It
	// exists to measure what the durable path costs (make bench); never
	// run a hall with it.
	MemoryOutbox bool
}

// Daemon is a running hallguard. Its accessors serve tests and the CLI.
type Daemon struct {
	cfg      *config.Config
	log      *slog.Logger
	clk      clock.Clock
	metrics  *Metrics
	eng      *engine.Engine
	pub      *mqtt.Publisher
	broker   *broker.Broker
	backend  devices.Backend
	outputs  map[string]devices.Output
	act      *actuator
	verifier *command.Verifier
	// keyDigest is the SHA-256 of the command key file read at start.
	keyDigest string
	store     *journal.Store
	rec       *recorder
	adjust    func(*config.Config)
	// centerAcks is set when mqtt.ack_topic asks for end-to-end delivery.
	centerAcks *mqtt.CenterAckQueue
	reloads    *reloadMetrics
	reloadMu   sync.Mutex
	// Conditions raised before MQTT and the recorder exist (see condition).
	condMu    sync.Mutex
	condReady bool
	condEarly []engine.Condition
	httpLn    net.Listener
	ready     atomic.Bool
	wg        sync.WaitGroup
	plan      *planState // plan.go: false alarms, timelines, drills
}

// Engine returns the running engine.
func (d *Daemon) Engine() *engine.Engine { return d.eng }

// Backend returns the devices backend (a *sim.Backend for backend: sim).
func (d *Daemon) Backend() devices.Backend { return d.backend }

// HTTPAddr returns the address the HTTP server listens on.
func (d *Daemon) HTTPAddr() string { return d.httpLn.Addr().String() }

// BrokerAddr returns the embedded broker's address, or "".
func (d *Daemon) BrokerAddr() string {
	if d.broker == nil {
		return ""
	}
	return d.broker.Addr()
}

// discovery is what Home Assistant is told, when the config enables it.
func discovery(cfg *config.Config) *mqtt.Discovery {
	if !cfg.MQTT.Discovery.Enabled {
		return nil
	}
	d := &mqtt.Discovery{Prefix: cfg.MQTT.Discovery.Prefix, HallID: cfg.Hall.ID, HallName: cfg.Hall.Name, Version: Version}
	for _, in := range cfg.Inputs {
		d.Inputs = append(d.Inputs, mqtt.DiscoveryInput{ID: in.ID, Name: in.Name, Kind: in.Kind})
	}
	return d
}

func (d *Daemon) queue(memory bool) mqtt.Queue {
	var q mqtt.Queue = d.store.Outbox()
	if memory {
		d.log.Warn("reports are held in memory only (-outbox memory): a crash loses unacknowledged reports")
		q = mqtt.NewMemQueue()
	}
	if d.cfg.MQTT.AckTopic != "" {
		d.centerAcks = mqtt.NewCenterAckQueue(q, d.cfg.MQTT.AckTimeout.D(), d.clk)
		return d.centerAcks
	}
	return q
}

// SimSocket is the sim control socket's path for cfg.
func SimSocket(cfg *config.Config) string { return filepath.Join(cfg.StateDir, "sim.sock") }

// Run starts hallguard for cfg and blocks until ctx is done, then shuts
// down: inputs closed, outputs to fail-safe, pending reports flushed.
func Run(ctx context.Context, cfg *config.Config, opts Options) (err error) {
	d := &Daemon{cfg: cfg, log: opts.Logger, clk: opts.Clock, outputs: map[string]devices.Output{}, adjust: opts.Adjust}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.clk == nil {
		d.clk = clock.Real{}
	}
	backends := opts.Backends
	if backends == nil {
		backends = Backends()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The journal's folder is the daemon's alone (hallguard check refuses
	// one the group or others can enter, README: Config reference).
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("daemon: state directory: %w", err)
	}
	for _, w := range cfg.Warnings {
		d.log.Warn("careless config", "warning", w.Error())
	}
	d.metrics = NewMetrics(cfg)
	d.reloads = newReloadMetrics(d.metrics.Registry)
	d.reloads.last.SetToCurrentTime()
	d.plan = newPlanState(d)
	if d.verifier, err = newVerifier(d); err != nil {
		return err
	}
	// The journal before MQTT: a report is durable before it is sent, and
	// the backlog of a crash is replayed first.
	if err := d.openJournal(); err != nil {
		return err
	}
	defer func() {
		d.rec.close()
		if err := d.store.Close(); err != nil {
			d.log.Error("journal close", "err", err)
		}
	}()
	d.rec.add("config", "", "", false, map[string]any{"file": cfg.File, "sha256": cfg.Digest(), "hall": cfg.Hall.ID,
		"backend": cfg.Backend, "inputs": len(cfg.Inputs), "outputs": len(cfg.Outputs), "playbooks": len(cfg.Playbooks), "version": Version})

	// MQTT first, so the first report has somewhere to go.
	mc := cfg.MQTT // the publisher's copy: the embedded broker's real address
	if mc.Broker == "embedded" {
		if d.broker, err = broker.Start(cfg.MQTT.Listen, d.log); err != nil {
			return fmt.Errorf("daemon: embedded broker: %w", err)
		}
		defer d.broker.Close()
		mc.Broker = "tcp://" + d.broker.Addr()
		d.log.Info("embedded MQTT broker listening", "addr", d.broker.Addr())
	}
	// Files named in the config are taken from the config's folder, as
	// commands.key_file is.
	mc.TLS.CAFile, mc.TLS.CertFile, mc.TLS.KeyFile = cfg.Path(mc.TLS.CAFile), cfg.Path(mc.TLS.CertFile), cfg.Path(mc.TLS.KeyFile)
	password := ""
	if cfg.MQTT.PasswordFile != "" {
		b, err := os.ReadFile(cfg.Path(cfg.MQTT.PasswordFile))
		if err != nil {
			return fmt.Errorf("daemon: mqtt password_file: %w", err)
		}
		password = string(trimNewline(b))
	}
	d.pub, err = mqtt.New(mc, cfg.Hall, mqtt.Options{
		Logger: d.log, Clock: d.clk, Password: password,
		OnAck: d.onAck,
		OnFail: func(r engine.Report, err error) {
			d.metrics.reportsFailed.WithLabelValues(r.Playbook).Inc()
		},
		OnConnect: func(up bool) {
			d.metrics.mqttConnected.Set(b2f(up))
			d.log.Info("mqtt connection", "connected", up)
		},
		Queue:     d.queue(opts.MemoryOutbox),
		Discovery: discovery(cfg),
	})
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	if err := d.pub.Start(ctx); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	d.attachConditions()
	if cfg.Backend == "sim" {
		// A simulated hall watches no real button: the center must know
		// that nothing here can raise an alarm.
		d.daemonCondition(engine.ClassTrouble, "simulated_backend", true, "backend sim: no real inputs are watched")
	}
	defer func() {
		fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer fcancel()
		d.pub.Close(fctx)
	}()

	// Devices: outputs at fail-safe before anything can drive them.
	factory, ok := backends[cfg.Backend]
	if !ok {
		return fmt.Errorf("daemon: no backend %q", cfg.Backend)
	}
	if d.backend, err = factory(cfg, d.clk); err != nil {
		return fmt.Errorf("daemon: backend %s: %w", cfg.Backend, err)
	}
	defer d.backend.Close()
	for _, oc := range cfg.Outputs {
		o, err := d.backend.OpenOutput(outputSpec(oc))
		if err != nil {
			return fmt.Errorf("daemon: output %s: %w", oc.ID, err)
		}
		d.outputs[oc.ID] = o
	}
	defer func() {
		for id, o := range d.outputs {
			if err := o.Close(); err != nil {
				d.log.Error("output to fail-safe", "output", id, "err", err)
			}
		}
	}()
	d.act = newActuator(d)

	openBefore, lastSeq := reportHistory(d.store)
	d.eng = engine.New(cfg, &fanout{d: d}, engine.WithClock(d.clk), d.drillHistory(), engine.WithFirstSeq(lastSeq))
	defer d.eng.Close()
	// Incidents open at the last stop or crash are reopened first: a robbery
	// latches until the center resolves it, whatever happens to the box.
	if n := d.eng.Restore(openBefore); n > 0 {
		d.log.Warn("incidents restored from the journal", "incidents", n)
	}

	// Inputs: each opened, read, conditioned and watched in its own goroutine.
	inCtx, stopInputs := context.WithCancel(ctx)
	opened := make(chan string, len(cfg.Inputs))
	for i := range cfg.Inputs {
		in := cfg.Inputs[i]
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.runInput(inCtx, in, opened)
		}()
	}
	defer func() {
		stopInputs()
		d.wg.Wait()
	}()
	for range cfg.Inputs {
		select {
		case <-opened:
		case <-time.After(10 * time.Second):
			d.log.Error("inputs still not open after 10s; starting anyway, with trouble raised for them")
			goto started
		case <-ctx.Done():
			return nil
		}
	}
started:
	d.eng.Start()
	d.act.rest()

	if d.httpLn, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
		return fmt.Errorf("daemon: http: %w", err)
	}
	srv := &http.Server{Handler: d.routes(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(d.httpLn)
	defer srv.Close()

	if sb, ok := d.backend.(*sim.Backend); ok {
		go func() {
			if err := sb.Serve(ctx, SimSocket(cfg)); err != nil {
				d.log.Error("sim control socket", "err", err)
			}
		}()
	}
	if n := d.rememberNonces(); n > 0 {
		d.log.Info("command nonces read back from the journal", "nonces", n)
	}
	intake := &commandIntake{d: d, limiter: newTokenBucket(rejectRate, rejectBurst)}
	d.metrics.Registry.MustRegister(newDroppedCollector(d.pub, intake))
	if err := d.pub.SubscribeIntake("cmd/+", intake); err != nil {
		return fmt.Errorf("daemon: commands: %w", err)
	}
	if d.centerAcks != nil {
		defer d.centerAcks.Close()
		ca := d.centerAcks
		d.metrics.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hallguard_reports_awaiting_center",
			Help: "Reports the broker acknowledged that still await the center's acknowledgement (mqtt.ack_topic)."},
			func() float64 { return float64(ca.AwaitingCenter()) }))
		if !strings.HasPrefix(cfg.MQTT.AckTopic, "cmd/") { // cmd/+ already carries it
			if err := d.pub.SubscribeIntake(cfg.MQTT.AckTopic, intake); err != nil {
				return fmt.Errorf("daemon: center acknowledgements: %w", err)
			}
		}
	}
	go d.compactLoop(ctx)
	go d.watchdog(ctx)
	go d.probeLoop(ctx) // probe.go: the business system (§4.2)
	d.ready.Store(true)
	d.notifyReady()
	d.log.Info("hallguard ready", "hall", cfg.Hall.ID, "backend", cfg.Backend, "inputs", len(cfg.Inputs),
		"outputs", len(cfg.Outputs), "http", d.httpLn.Addr().String(), "mqtt", mc.Broker)
	if opts.Ready != nil {
		opts.Ready(d)
	}
	<-ctx.Done()
	d.notifyStopping()
	d.log.Info("hallguard stopping")
	return nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func lineRef(chip string, line *int, name string) devices.LineRef {
	ref := devices.LineRef{Chip: chip, Offset: -1, Name: name}
	if line != nil {
		ref.Offset = *line
	}
	return ref
}

func inputSpec(cfg *config.Config, in config.Input) devices.InputSpec {
	idle := devices.Low
	if in.Contact == "NC" {
		idle = devices.High
	}
	bias := devices.Bias(in.Bias)
	if in.Bias == "as-is" {
		bias = devices.BiasAsIs
	}
	return devices.InputSpec{ID: in.ID, Line: lineRef(in.Chip, in.Line, in.LineName), ActiveLow: in.ActiveLow,
		Bias: bias, Debounce: in.Debounce.D(), EventBuffer: cfg.GPIO.EventBuffer, Idle: idle}
}

func outputSpec(o config.Output) devices.OutputSpec {
	return devices.OutputSpec{ID: o.ID, Line: lineRef(o.Chip, o.Line, o.LineName), ActiveLow: o.ActiveLow,
		FailSafe: devices.Level(o.FailSafe == "active")}
}

// runInput keeps one input open and watched until ctx is done. A line that
// fails (its chip removed) raises line_lost trouble and is reopened.
func (d *Daemon) runInput(ctx context.Context, in config.Input, opened chan<- string) {
	spec := inputSpec(d.cfg, in)
	adapter := engineHandler{d.eng}
	lost := false
	signalled := false
	for {
		line, err := d.backend.OpenInput(spec)
		var level devices.Level
		if err == nil {
			level, err = line.Read()
			if err != nil {
				line.Close()
			}
		}
		if err != nil {
			if !lost {
				d.log.Error("input unavailable", "input", in.ID, "err", err)
				d.eng.Fault(devices.Fault{Input: in.ID, Kind: devices.FaultLineLost, Active: true, Time: d.clk.Now(), Detail: err.Error()})
				lost = true
			}
			if !signalled {
				opened <- in.ID
				signalled = true
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Second):
				continue
			}
		}
		if lost {
			d.log.Info("input back", "input", in.ID)
			d.eng.Fault(devices.Fault{Input: in.ID, Kind: devices.FaultLineLost, Active: false, Time: d.clk.Now()})
			lost = false
		}
		debounce := spec.Debounce
		if line.KernelDebounce() {
			debounce = 0
		}
		cond := devices.NewConditioner(devices.ConditionSpec{ID: in.ID, Contact: devices.Contact(in.Contact),
			Debounce: debounce, StuckAfter: in.StuckAfter.D()}, d.clk, adapter)
		cond.Start(level, d.clk.Now())
		if !signalled {
			opened <- in.ID
			signalled = true
		}

		// The backend's callback hands off without blocking; a full buffer
		// is counted and folded into the next event's Lost.
		events := make(chan devices.Event, 512) // the backend buffers too (kernel + its queue); a full one is counted
		var dropped atomic.Uint64
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ev := range events {
				ev.Lost += dropped.Swap(0)
				cond.Edge(ev)
			}
		}()
		err = line.Watch(ctx, func(ev devices.Event) {
			select {
			case events <- ev:
			default:
				dropped.Add(1)
				d.metrics.handoffDropped.WithLabelValues(in.ID).Inc()
			}
		})
		close(events)
		<-done
		cond.Stop()
		line.Close()
		if ctx.Err() != nil {
			return
		}
		d.log.Error("input lost", "input", in.ID, "err", err)
		d.eng.Fault(devices.Fault{Input: in.ID, Kind: devices.FaultLineLost, Active: true, Time: d.clk.Now(), Detail: fmt.Sprint(err)})
		lost = true
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

type engineHandler struct{ e *engine.Engine }

func (h engineHandler) Signal(s devices.Signal) { h.e.Signal(s) }
func (h engineHandler) Fault(f devices.Fault)   { h.e.Fault(f) }

// fanout is the engine's Sink: every effect to MQTT, metrics and outputs.
type fanout struct{ d *Daemon }

var _ engine.Sink = (*fanout)(nil)

func (f *fanout) Report(r engine.Report) {
	f.d.metrics.report(r)
	f.d.planReport(r)
	f.d.pub.Report(r) // the outbox journals the report with it
	switch r.Event {
	case engine.EventRaised, engine.EventAcknowledged, engine.EventResolved, engine.EventFalseAlarm:
		f.d.rec.add("incident", r.Incident, r.Playbook, r.Drill, map[string]any{"event": r.Event, "state": r.State,
			"variant": r.Variant, "origin": r.Origin, "source": r.Source, "version": r.Version, "report": r.ID})
	case engine.EventStep:
		if n := len(r.Measures); n > 0 {
			f.d.rec.add("step", r.Incident, r.Playbook, r.Drill, r.Measures[n-1])
		}
	}
	f.d.metrics.reportsPending.Set(float64(f.d.pub.Pending()))
	f.d.log.Info("report", "id", r.ID, "playbook", r.Playbook, "variant", r.Variant, "event", r.Event, "state", r.State)
}

func (f *fanout) Drive(output string, active bool, reason string) {
	f.d.metrics.outputActive.WithLabelValues(output).Set(b2f(active))
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

// actuator applies output changes outside the engine's lock.
type actuator struct {
	d    *Daemon
	mu   sync.Mutex
	want map[string]bool
	wake chan struct{}
}

func newActuator(d *Daemon) *actuator {
	a := &actuator{d: d, want: map[string]bool{}, wake: make(chan struct{}, 1)}
	go a.loop()
	return a
}

func (a *actuator) set(id string, active bool) {
	a.mu.Lock()
	a.want[id] = active
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// rest drives every output the engine does not want to its inactive level,
// leaving the fail-safe level the devices took at open.
func (a *actuator) rest() {
	a.mu.Lock()
	for id := range a.d.outputs {
		if _, ok := a.want[id]; !ok {
			a.want[id] = false
		}
	}
	a.mu.Unlock()
	a.set("", false)
}

func (a *actuator) loop() {
	applied := map[string]*bool{}
	for range a.wake {
		a.mu.Lock()
		want := make(map[string]bool, len(a.want))
		for k, v := range a.want {
			want[k] = v
		}
		a.mu.Unlock()
		for id, on := range want {
			o := a.d.outputs[id]
			if o == nil || (applied[id] != nil && *applied[id] == on) {
				continue
			}
			if err := o.Set(devices.Level(on)); err != nil {
				a.d.log.Error("output", "output", id, "err", err)
				continue
			}
			v := on
			applied[id] = &v
		}
	}
}

func (d *Daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.metrics.Registry, promhttp.HandlerOpts{Registry: d.metrics.Registry}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		status := map[string]any{"ready": d.ready.Load(), "mqtt_connected": d.pub.Connected(), "reports_pending": d.pub.Pending(), "hall": d.cfg.Hall.ID}
		if !d.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(status)
	})
	d.journalRoutes(mux)
	if err := console.Mount(mux, console.Options{Engine: d.eng, Config: d.cfg, Connected: d.pub.Connected, Clock: d.clk, Logger: d.log, Record: d.rec.add,
		Counted: func(verb, result string) { d.metrics.commands.WithLabelValues(verb, result).Inc() }, Registerer: d.metrics.Registry}); err != nil {
		d.log.Error("staff console not served", "err", err)
	}
	mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST to reload the config", http.StatusMethodNotAllowed)
			return
		}
		if err := d.Reload(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, "reloaded")
	})
	mux.HandleFunc("/api/incidents", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(d.eng.Incidents())
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "hallguard %s for %s\n/metrics  Prometheus metrics\n/healthz  readiness\n/api/incidents  incidents as JSON\n/api/journal/verify, /api/journal/export?format=jsonl|csv&since=&until=&playbook=&incident=&kind=&drill=\n", Version, d.cfg.Hall.Name)
	})
	return mux
}

// compactLoop drops retired outbox entries past their retention, hourly.
func (d *Daemon) compactLoop(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := d.store.Compact(d.clk.Now()); err != nil {
				d.log.Warn("journal compaction", "err", err)
			} else if n > 0 {
				d.log.Info("journal compaction", "removed", n)
			}
		}
	}
}
