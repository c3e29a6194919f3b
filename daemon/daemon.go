package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hallguard/hallguard/arc"
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
	"github.com/hallguard/hallguard/outbox"
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
	// EnableReload serves POST /-/reload on the local listener (off by
	// default, as Prometheus's --web.enable-lifecycle); SIGHUP always
	// reloads.
	EnableReload bool
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

	// outMu guards outputs once the actuator runs (it reopens a failed
	// one) and outClosed (set when they go to fail-safe at stop).
	outMu     sync.Mutex
	outClosed bool
	// restorePending: the open incidents could not be read at start
	// (journal_unreadable); retried when the journal's disk works again.
	restoreMu      sync.Mutex
	restorePending bool
	// Sources of journal_slow now active (notify.go).
	slowMu sync.Mutex
	slowBy map[string]bool
	// side.go: drill records, reviews, CCTV requests; memOutbox is
	// Options.MemoryOutbox (side records then journalled apart).
	side      sideState
	memOutbox bool
	httpLn    net.Listener
	localLn   net.Listener
	// live is the config in force: cfg at start, the new one after each
	// reload. Whatever may change live reads it (config()); cfg stays for
	// what only a restart changes.
	live         atomic.Pointer[config.Config]
	console      *console.Console
	enableReload bool
	ready        atomic.Bool
	// arc is the DC-09 transmitter (arc.go), nil without an arc section.
	arc       atomic.Pointer[arc.Transmitter]
	mqttWatch mqttPathWatch
	wg        sync.WaitGroup
	// loops are the daemon's goroutines (group.go): goReady's loops end
	// with Run's context, and Run waits for them before it closes what
	// they use (journal, MQTT, engine); the last closer stops the group.
	loops group
	plan  *planState // plan.go: false alarms, timelines, drills
}

// Engine returns the running engine.
func (d *Daemon) Engine() *engine.Engine { return d.eng }

// Backend returns the devices backend (a *sim.Backend for backend: sim).
func (d *Daemon) Backend() devices.Backend { return d.backend }

// HTTPAddr returns the operations listener's address (/metrics, /healthz).
func (d *Daemon) HTTPAddr() string { return d.httpLn.Addr().String() }

// LocalAddr returns the local listener's address (console, /api/*, reload).
func (d *Daemon) LocalAddr() string { return d.localLn.Addr().String() }

// config is the config in force (it changes on reload).
func (d *Daemon) config() *config.Config { return d.live.Load() }

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
	silent := silentInputs(cfg)
	for _, in := range cfg.Inputs {
		if slices.Contains(silent, in.ID) {
			continue // §4.3: never announced
		}
		d.Inputs = append(d.Inputs, mqtt.DiscoveryInput{ID: in.ID, Name: in.Name, Kind: in.Kind})
	}
	return d
}

func (d *Daemon) queue() outbox.Queue {
	var q outbox.Queue = d.store.Outbox()
	if d.memOutbox {
		d.log.Warn("reports are held in memory only (-outbox memory): a crash loses unacknowledged reports")
		q = outbox.NewMemQueue()
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
//
// Each start step returns what stops it; the steps' closers run in the
// reverse of their start order, on every return. Every goroutine Run
// starts has ended when it returns.
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	d := newDaemon(cfg, opts)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stack closers
	defer stack.close() // before cancel, as the steps' defers were
	// Last of all: the daemon's timers and goroutines.
	stack.push(func() { d.stopBackground(cancel) })

	if err := d.prepare(); err != nil {
		return err
	}
	// The journal before MQTT: a report is durable before it is sent, and
	// the backlog of a crash is replayed first.
	if err := stack.add(d.startJournal()); err != nil {
		return err
	}
	d.recordConfig()
	headKey, err := HeadKey(cfg)
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	// MQTT first, so the first report has somewhere to go.
	mc, password, stopBroker, err := d.startBroker()
	if err != nil {
		return err
	}
	stack.push(stopBroker)
	if err := stack.add(d.startMQTT(ctx, mc, password)); err != nil {
		return err
	}
	// The DC-09 path to the ARC, beside MQTT, before the engine can report.
	if err := stack.add(d.startARC(ctx)); err != nil {
		return err
	}
	// Devices: outputs at fail-safe before anything can drive them.
	if err := stack.add(d.openBackend(opts.Backends)); err != nil {
		return err
	}
	if err := stack.add(d.openOutputs()); err != nil {
		return err
	}
	stack.push(d.startEngine())
	d.restoreAtStart()
	stopInputs, opened := d.startInputs(ctx)
	stack.push(stopInputs)
	if !d.waitInputs(ctx, opened) {
		return nil
	}
	d.eng.Start()
	d.act.rest()

	if err := stack.add(d.serveHTTP()); err != nil {
		return err
	}
	if err := d.serveSim(ctx); err != nil {
		return err
	}
	intake, err := d.startCommands()
	if err != nil {
		return err
	}
	if d.centerAcks != nil {
		stack.push(d.centerAcks.Close)
		if err := d.startCenterAcks(intake); err != nil {
			return err
		}
	}
	d.goReady(ctx, headKey, mc.Broker, opts.Ready)
	<-ctx.Done()
	d.notifyStopping()
	d.log.Info("hallguard stopping")
	// The loops end with ctx; none may still use the journal, MQTT or the
	// engine when the stack closes them.
	d.loops.Wait()
	return nil
}

// stopBackground is Run's last closer: it ends Run's context (still live
// on the way out of a start that failed), stops the daemon's timers and
// joins its goroutines.
func (d *Daemon) stopBackground(cancel context.CancelFunc) {
	cancel()
	d.stopTimers()
	d.loops.Stop()
}

// stopTimers stops the daemon's own timers, the MQTT path's watch and the
// waits for CCTV answers, so that none fires once Run has returned.
func (d *Daemon) stopTimers() {
	w := &d.mqttWatch
	w.mu.Lock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	w.mu.Unlock()
	d.side.mu.Lock()
	for _, c := range d.side.cctv {
		if c.timer != nil {
			c.timer.Stop()
		}
	}
	d.side.mu.Unlock()
}

// closers is Run's stack of what stops each start step.
type closers []func()

// push adds stop (nil: nothing to stop).
func (s *closers) push(stop func()) {
	if stop != nil {
		*s = append(*s, stop)
	}
}

// add pushes a start step's stop, unless the step failed: then it returns
// the step's error (a failed step stops what it had started itself).
func (s *closers) add(stop func(), err error) error {
	if err != nil {
		return err
	}
	s.push(stop)
	return nil
}

// close runs the stops, last pushed first. Its receiver is a pointer: a
// deferred close then sees the steps pushed after the defer.
func (s *closers) close() {
	for i := len(*s) - 1; i >= 0; i-- {
		(*s)[i]()
	}
}

// newDaemon is the daemon for cfg and opts, not yet started.
func newDaemon(cfg *config.Config, opts Options) *Daemon {
	d := &Daemon{cfg: cfg, log: opts.Logger, clk: opts.Clock, outputs: map[string]devices.Output{}, adjust: opts.Adjust,
		enableReload: opts.EnableReload, memOutbox: opts.MemoryOutbox}
	d.live.Store(cfg)
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.clk == nil {
		d.clk = clock.Real{}
	}
	// A careless but valid config runs, and says so (`hallguard check
	// -strict` refuses it).
	for _, w := range cfg.Warnings {
		d.log.Warn("config warning", "file", w.File, "line", w.Line, "field", w.Field, "warning", w.Msg)
	}
	return d
}

// prepare makes the state directory, the metrics, the plan state and the
// command verifier: nothing that needs stopping.
func (d *Daemon) prepare() (err error) {
	// The journal's folder is the daemon's alone (hallguard check refuses
	// one the group or others can enter, README: Config reference).
	if err := os.MkdirAll(d.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("daemon: state directory: %w", err)
	}
	d.metrics = NewMetrics(d.cfg)
	d.reloads = newReloadMetrics(d.metrics.Registry)
	d.reloads.last.SetToCurrentTime()
	d.plan = newPlanState(d)
	d.verifier, err = newVerifier(d)
	return err
}

// startJournal opens the journal and its recorder; stop closes both.
func (d *Daemon) startJournal() (stop func(), err error) {
	if err := d.openJournal(); err != nil {
		return nil, err
	}
	return func() {
		d.rec.close()
		if err := d.store.Close(); err != nil {
			d.log.Error("journal close", "err", err)
		}
	}, nil
}

// recordConfig journals the config the daemon starts with.
func (d *Daemon) recordConfig() {
	cfg := d.cfg
	d.rec.add("config", "", "", false, map[string]any{"file": cfg.File, "sha256": cfg.Digest(), "hall": cfg.Hall.ID,
		"backend": cfg.Backend, "inputs": len(cfg.Inputs), "outputs": len(cfg.Outputs), "playbooks": len(cfg.Playbooks), "version": Version})
}

// startBroker starts the embedded MQTT broker when mqtt.broker says
// "embedded" (stop is then its Close; nil without it), and returns the
// publisher's copy of the MQTT config, with the password to use.
func (d *Daemon) startBroker() (mc config.MQTT, password string, stop func(), err error) {
	cfg := d.cfg
	mc = cfg.MQTT // the publisher's copy: the embedded broker's real address
	// Files named in the config are taken from the config's folder, as
	// commands.key_file is.
	mc.TLS.CAFile, mc.TLS.CertFile, mc.TLS.KeyFile = cfg.Path(mc.TLS.CAFile), cfg.Path(mc.TLS.CertFile), cfg.Path(mc.TLS.KeyFile)
	if mc.Broker == "embedded" {
		auth, pw, err := d.brokerAuth(cfg)
		if err != nil {
			return mc, "", nil, fmt.Errorf("daemon: embedded broker: %w", err)
		}
		if d.broker, err = broker.Start(cfg.MQTT.Listen, d.log, broker.WithAuth(auth)); err != nil {
			return mc, "", nil, fmt.Errorf("daemon: embedded broker: %w", err)
		}
		mc.Broker = "tcp://" + d.broker.Addr()
		mc.Username, password = BrokerUser, pw
		d.log.Info("embedded MQTT broker listening", "addr", d.broker.Addr(), "password_file", BrokerPasswordFile(cfg))
		return mc, password, func() { d.broker.Close() }, nil
	} else if cfg.MQTT.PasswordFile != "" {
		b, err := os.ReadFile(cfg.Path(cfg.MQTT.PasswordFile))
		if err != nil {
			return mc, "", nil, fmt.Errorf("daemon: mqtt password_file: %w", err)
		}
		password = string(bytes.TrimRight(b, "\r\n"))
	}
	return mc, password, nil, nil
}

// startMQTT starts the publisher on mc; stop flushes it (5 s at most).
func (d *Daemon) startMQTT(ctx context.Context, mc config.MQTT, password string) (stop func(), err error) {
	cfg := d.cfg
	d.pub, err = mqtt.New(mc, cfg.Hall, mqtt.Options{
		Logger: d.log, Clock: d.clk, Password: password,
		OnAck:       d.onAck,
		OnRecordAck: d.onRecordAck,
		OnFail: func(r engine.Report, err error) {
			d.metrics.reportsFailed.WithLabelValues(r.Playbook).Inc()
		},
		OnConnect: func(up bool) {
			d.metrics.mqttConnected.Set(b2f(up))
			d.log.Info("mqtt connection", "connected", up)
			d.mqttPath(up) // arc.go: a long outage is reported over DC-09
		},
		Queue:        d.queue(),
		Discovery:    discovery(cfg),
		SilentInputs: silentInputs(cfg),
		JournalHead: func() (uint64, string) {
			h := d.store.Head()
			return h.Seq, h.Hash
		},
	})
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	if err := d.pub.Start(ctx); err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	d.attachConditions()
	if cfg.Backend == "sim" {
		// A simulated hall watches no real button: the center must know
		// that nothing here can raise an alarm.
		d.daemonCondition(engine.ClassTrouble, "simulated_backend", true, "backend sim: no real inputs are watched")
	}
	return func() {
		fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer fcancel()
		d.pub.Close(fctx)
	}, nil
}

// openBackend opens the config's device backend, from backends (nil:
// Backends()); stop closes it.
func (d *Daemon) openBackend(backends map[string]BackendFactory) (stop func(), err error) {
	if backends == nil {
		backends = Backends()
	}
	cfg := d.cfg
	factory, ok := backends[cfg.Backend]
	if !ok {
		return nil, fmt.Errorf("daemon: no backend %q", cfg.Backend)
	}
	if d.backend, err = factory(cfg, d.clk); err != nil {
		return nil, fmt.Errorf("daemon: backend %s: %w", cfg.Backend, err)
	}
	return func() { d.backend.Close() }, nil
}

// openOutputs opens every output (at fail-safe) and starts the actuator;
// stop returns them all to fail-safe. If one fails to open, the ones
// opened before it are left to the backend's Close.
func (d *Daemon) openOutputs() (stop func(), err error) {
	for _, oc := range d.cfg.Outputs {
		o, err := d.backend.OpenOutput(outputSpec(oc))
		if err != nil {
			return nil, fmt.Errorf("daemon: output %s: %w", oc.ID, err)
		}
		d.outputs[oc.ID] = o
	}
	d.act = newActuator(d)
	return func() {
		d.outMu.Lock()
		d.outClosed = true
		for id, o := range d.outputs {
			if err := o.Close(); err != nil {
				d.log.Error("output to fail-safe", "output", id, "err", err)
			}
		}
		d.outMu.Unlock()
		d.act.stop()
	}, nil
}

// startEngine makes the engine, not yet started; stop closes it.
func (d *Daemon) startEngine() (stop func()) {
	d.restoreMu.Lock()
	d.eng = engine.New(d.cfg, (&fanout{d: d}).sinks(), engine.WithClock(d.clk), d.drillHistory())
	d.restoreMu.Unlock()
	return d.eng.Close
}

// restoreAtStart gives the new engine what was open at the last stop.
func (d *Daemon) restoreAtStart() {
	// Incidents open at the last stop or crash are reopened first, from the
	// journal's index of open incidents, and the report seq continues.
	d.restoreOpen()
	d.cctvAwaitedAtStart() // side.go: bookmark answers awaited before the stop
}

// startInputs opens, reads, conditions and watches each input in its own
// goroutine; each sends its id on opened once open. stop ends them and
// waits for them.
func (d *Daemon) startInputs(ctx context.Context) (stop func(), opened <-chan string) {
	inCtx, stopInputs := context.WithCancel(ctx)
	open := make(chan string, len(d.cfg.Inputs))
	for i := range d.cfg.Inputs {
		in := d.cfg.Inputs[i]
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.runInput(inCtx, in, open)
		}()
	}
	return func() {
		stopInputs()
		d.wg.Wait()
	}, open
}

// waitInputs waits until every input is open, or 10 s without one opening
// (then the daemon starts anyway, the rest in trouble). False: ctx ended
// first, and Run returns.
func (d *Daemon) waitInputs(ctx context.Context, opened <-chan string) bool {
	for range d.cfg.Inputs {
		t, expired := d.clk.NewTimer(10 * time.Second)
		select {
		case <-opened:
			t.Stop()
		case <-expired:
			d.log.Error("inputs still not open after 10s; starting anyway, with trouble raised for them")
			return true
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
	return true
}

// serveSim serves the sim backend's control socket (no other backend has
// one) until ctx ends. It exists before READY=1, so a client that dials
// it right after READY finds it.
func (d *Daemon) serveSim(ctx context.Context) error {
	sb, ok := d.backend.(*sim.Backend)
	if !ok {
		return nil
	}
	sl, err := sim.Listen(SimSocket(d.cfg))
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	d.loops.Go(func() {
		if err := sb.Serve(ctx, sl); err != nil {
			d.log.Error("sim control socket", "err", err)
		}
	})
	return nil
}

// startCommands reads back the journal's command nonces and subscribes
// the command intake (cmd/+) and the CCTV answers.
func (d *Daemon) startCommands() (*commandIntake, error) {
	if n := d.rememberNonces(); n > 0 {
		d.log.Info("command nonces read back from the journal", "nonces", n)
	}
	intake := &commandIntake{d: d, limiter: newTokenBucket(rejectRate, rejectBurst)}
	d.metrics.Registry.MustRegister(newDroppedCollector(d.pub, intake))
	if err := d.pub.SubscribeIntake("cmd/+", intake); err != nil {
		return nil, fmt.Errorf("daemon: commands: %w", err)
	}
	if t := d.cfg.CCTV.ReplyTopic; t != "" {
		if err := d.pub.Subscribe(t, d.cctvReply); err != nil {
			return nil, fmt.Errorf("daemon: cctv answers: %w", err)
		}
	}
	return intake, nil
}

// startCenterAcks serves mqtt.ack_topic (d.centerAcks set): its gauge,
// and its subscription unless cmd/+ already carries it.
func (d *Daemon) startCenterAcks(intake *commandIntake) error {
	ca := d.centerAcks
	d.metrics.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hallguard_reports_awaiting_center",
		Help: "Reports the broker acknowledged that still await the center's acknowledgement (mqtt.ack_topic)."},
		func() float64 { return float64(ca.AwaitingCenter()) }))
	if !strings.HasPrefix(d.cfg.MQTT.AckTopic, "cmd/") { // cmd/+ already carries it
		if err := d.pub.SubscribeIntake(d.cfg.MQTT.AckTopic, intake); err != nil {
			return fmt.Errorf("daemon: center acknowledgements: %w", err)
		}
	}
	return nil
}

// goReady starts the background loops, then says the daemon is ready:
// to systemd, the log and opts.Ready.
func (d *Daemon) goReady(ctx context.Context, headKey journal.HeadKey, mqttBroker string, ready func(*Daemon)) {
	cfg := d.cfg
	d.loops.Go(func() { d.compactLoop(ctx) })
	d.loops.Go(func() { d.headLoop(ctx, headKey) }) // journal/head: the chain anchored off the box (issue #12 §5)
	d.loops.Go(func() { d.watchdog(ctx) })
	d.loops.Go(func() { d.probeLoop(ctx) }) // probe.go: the business system (§4.2)
	d.ready.Store(true)
	d.notifyReady()
	d.log.Info("hallguard ready", "hall", cfg.Hall.ID, "backend", cfg.Backend, "inputs", len(cfg.Inputs),
		"outputs", len(cfg.Outputs), "http", d.httpLn.Addr().String(), "local", d.localLn.Addr().String(),
		"reload_api", d.enableReload, "mqtt", mqttBroker)
	if ready != nil {
		ready(d)
	}
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
	if devices.Contact(in.Contact) == devices.NC {
		idle = devices.High
	}
	bias := devices.Bias(in.Bias)
	if in.Bias == config.BiasAsIs {
		bias = devices.BiasAsIs
	}
	return devices.InputSpec{ID: in.ID, Line: lineRef(in.Chip, in.Line, in.LineName), ActiveLow: in.ActiveLow,
		Bias: bias, Debounce: in.Debounce.D(), EventBuffer: cfg.GPIO.EventBuffer, Idle: idle}
}

func outputSpec(o config.Output) devices.OutputSpec {
	return devices.OutputSpec{ID: o.ID, Line: lineRef(o.Chip, o.Line, o.LineName), ActiveLow: o.ActiveLow,
		FailSafe: devices.Level(o.FailSafe == config.LevelActive)}
}

// runInput keeps one input open and watched until ctx is done. A line that
// fails (its chip removed) raises line_lost trouble and is reopened.
func (d *Daemon) runInput(ctx context.Context, in config.Input, opened chan<- string) {
	spec := inputSpec(d.cfg, in)
	adapter := engineHandler{d.eng}
	lost := false
	signalled := false
	signal := func() {
		if !signalled {
			opened <- in.ID
			signalled = true
		}
	}
	// One conditioner for the life of the input, across reopens: it knows
	// what was reported before the line was lost, so a reopen can report
	// the true level both ways (Conditioner.Start).
	var cond *devices.Conditioner
	for {
		line, level, err := d.openInput(spec)
		if err != nil {
			if !lost {
				d.log.Error("input unavailable", "input", in.ID, "err", err)
				d.eng.Fault(devices.Fault{Input: in.ID, Kind: devices.FaultLineLost, Active: true, Time: d.clk.Now(), Detail: err.Error()})
				lost = true
			}
			signal()
			if clock.Sleep(ctx, d.clk, inputRetry) != nil {
				return
			}
			continue
		}
		if lost {
			d.log.Info("input back", "input", in.ID)
			d.eng.Fault(devices.Fault{Input: in.ID, Kind: devices.FaultLineLost, Active: false, Time: d.clk.Now()})
			lost = false
		}
		if cond == nil {
			debounce := spec.Debounce
			if line.KernelDebounce() {
				debounce = 0
			}
			cond = devices.NewConditioner(devices.ConditionSpec{ID: in.ID, Contact: devices.Contact(in.Contact),
				Debounce: debounce, StuckAfter: in.StuckAfter.D(), Alarm: alarmInput(in)}, d.clk, adapter)
		}
		cond.Start(level, d.clk.Now())
		signal()
		err = d.watchInput(ctx, in.ID, line, level, cond)
		cond.Stop()
		line.Close()
		if ctx.Err() != nil {
			return
		}
		d.log.Error("input lost", "input", in.ID, "err", err)
		d.eng.Fault(devices.Fault{Input: in.ID, Kind: devices.FaultLineLost, Active: true, Time: d.clk.Now(), Detail: fmt.Sprint(err)})
		lost = true
		if clock.Sleep(ctx, d.clk, inputRetry) != nil {
			return
		}
	}
}

// openInput opens the line of spec and reads its level; on an error the
// line is closed again.
func (d *Daemon) openInput(spec devices.InputSpec) (devices.Input, devices.Level, error) {
	line, err := d.backend.OpenInput(spec)
	if err != nil {
		return nil, devices.Low, err
	}
	level, err := line.Read()
	if err != nil {
		line.Close()
		return nil, devices.Low, err
	}
	return line, level, nil
}

// watchInput watches line, whose level was level, into cond until the
// watch ends (ctx done or the line lost), and returns the watch's error.
//
// The backend's callback hands off without blocking. A full hand-off drops
// its oldest edge, never the newest, and counts it; once conditioning has
// caught up after a drop, the line is read again and its level delivered,
// so an engine stall always ends with the line's true level (§4.4: a
// chattering detector that latches in alarm must still end in fire).
func (d *Daemon) watchInput(ctx context.Context, id string, line devices.Input, level devices.Level, cond *devices.Conditioner) error {
	ho := newHandoff(handoffSize)
	done := make(chan struct{})
	go func() {
		defer close(done)
		last := level
		for {
			ev, caughtUp, ok := ho.get()
			if !ok {
				return
			}
			cond.Edge(ev)
			last = ev.Level
			if !caughtUp {
				continue
			}
			if l, err := line.Read(); err == nil && l != last {
				cond.Edge(devices.Event{Line: id, Level: l, Time: d.clk.Now(), Seq: ev.Seq})
				last = l
			}
		}
	}()
	err := line.Watch(ctx, func(ev devices.Event) {
		if ho.put(ev) {
			d.metrics.handoffDropped.WithLabelValues(id).Inc()
		}
	})
	ho.close()
	<-done
	return err
}

// alarmInput reports whether in is a hold-up or manual fire input, where a
// doubtful signal (a reopened line, a pulse the backend missed) counts as
// an activation (§4.3, §4.4).
func alarmInput(in config.Input) bool {
	return in.Kind == config.KindPanic || in.Kind == config.KindCallpoint
}

type engineHandler struct{ e *engine.Engine }

func (h engineHandler) Signal(s devices.Signal) { h.e.Signal(s) }
func (h engineHandler) Fault(f devices.Fault)   { h.e.Fault(f) }

// inputRetry is how long an input that cannot be opened or read, or whose
// line was lost, waits before it is opened again.
const inputRetry = 2 * time.Second

// outputRetry is how often an output that failed is tried again (reopened
// first: a lost chip's line handle stays dead when the chip comes back).
const outputRetry = time.Second

// actuator applies output changes outside the engine's lock. An output
// that fails to take its level is not reported as driven (§3.2): its
// metric keeps the level the line last took, the engine records the
// failure in the reports of the incidents that want it, trouble
// output_failed is raised, and the output is reopened and retried every
// outputRetry until it takes the level; then all of that is undone.
type actuator struct {
	d    *Daemon
	mu   sync.Mutex
	want map[string]bool
	wake chan struct{}
	// retryArmed: a retry of the failed outputs is scheduled.
	retryArmed atomic.Bool
	// notes are the engine calls (OutputFailed, OutputRestored) in order,
	// made by their own goroutine: a held engine never stalls the outputs.
	notesMu sync.Mutex
	notes   []func()
	noteUp  chan struct{}
	// quit ends loop and noteLoop; loops waits for them (stop).
	quit  chan struct{}
	loops sync.WaitGroup
}

func newActuator(d *Daemon) *actuator {
	a := &actuator{d: d, want: map[string]bool{}, wake: make(chan struct{}, 1), noteUp: make(chan struct{}, 1),
		quit: make(chan struct{})}
	a.loops.Go(a.loop)
	a.loops.Go(a.noteLoop)
	return a
}

// stop ends the actuator's goroutines and waits for them: nothing is
// driven, and no engine call noted, once it returns.
func (a *actuator) stop() {
	close(a.quit)
	a.loops.Wait()
}

// woken waits for a signal on ch; false once the actuator stops.
func (a *actuator) woken(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-a.quit:
		return false
	}
}

// note queues an engine call, made in order by noteLoop.
func (a *actuator) note(f func()) {
	a.notesMu.Lock()
	a.notes = append(a.notes, f)
	a.notesMu.Unlock()
	nudge(a.noteUp)
}

func (a *actuator) noteLoop() {
	for a.woken(a.noteUp) {
		a.notesMu.Lock()
		todo := a.notes
		a.notes = nil
		a.notesMu.Unlock()
		for _, f := range todo {
			f()
		}
	}
}

func (a *actuator) set(id string, active bool) {
	a.mu.Lock()
	a.want[id] = active
	a.mu.Unlock()
	nudge(a.wake)
}

// rest drives every output the engine does not want to its inactive level,
// leaving the fail-safe level the devices took at open.
func (a *actuator) rest() {
	a.d.outMu.Lock()
	ids := slices.Collect(maps.Keys(a.d.outputs))
	a.d.outMu.Unlock()
	a.mu.Lock()
	for _, id := range ids {
		if _, ok := a.want[id]; !ok {
			a.want[id] = false
		}
	}
	a.mu.Unlock()
	a.set("", false)
}

func (a *actuator) loop() {
	applied := map[string]*bool{}
	failures := map[string]int{} // consecutive failed drives per output
	lost := map[string]bool{}    // the last failure said the line is gone
	for a.woken(a.wake) {
		a.mu.Lock()
		want := maps.Clone(a.want)
		a.mu.Unlock()
		for _, id := range slices.Sorted(maps.Keys(want)) {
			on := want[id]
			if applied[id] != nil && *applied[id] == on && failures[id] == 0 {
				continue
			}
			// A lost line is reopened at once; another error gets one more
			// try on the same handle first (a reopen drives the line to its
			// fail-safe level for a moment).
			reopen := failures[id] > 0 && (lost[id] || failures[id] >= 2)
			err := a.drive(id, on, reopen)
			if errors.Is(err, errNoOutput) {
				continue
			}
			if err != nil {
				failures[id]++
				lost[id] = errors.Is(err, devices.ErrLineLost)
				if failures[id] == 1 {
					a.failed(id, on, err)
				}
				continue
			}
			v := on
			applied[id] = &v
			a.d.metrics.outputActive.WithLabelValues(id).Set(b2f(on))
			if failures[id] > 0 {
				delete(failures, id)
				delete(lost, id)
				a.restored(id, on)
			}
		}
		if len(failures) > 0 && a.retryArmed.CompareAndSwap(false, true) {
			a.d.clk.AfterFunc(outputRetry, func() {
				a.retryArmed.Store(false)
				nudge(a.wake)
			})
		}
	}
}

var errNoOutput = errors.New("daemon: no such output")

// drive sets output id; with reopen, the line is first closed and opened
// again (a lost chip's handle stays dead when the chip comes back).
func (a *actuator) drive(id string, on, reopen bool) error {
	d := a.d
	d.outMu.Lock()
	defer d.outMu.Unlock()
	o := d.outputs[id]
	if o == nil || d.outClosed {
		return errNoOutput
	}
	if reopen {
		oc := d.cfg.Output(id)
		if oc == nil {
			return errNoOutput
		}
		_ = o.Close() // a lost line's handle: its error says nothing new
		no, err := d.backend.OpenOutput(outputSpec(*oc))
		if err != nil {
			return fmt.Errorf("reopen: %w", err)
		}
		d.outputs[id] = no
		o = no
	}
	return o.Set(devices.Level(on))
}

// failed makes an output failure known: log, trouble (metrics and the
// center), and the reports of the incidents that want the output.
func (a *actuator) failed(id string, on bool, err error) {
	d := a.d
	d.log.Error("output failed: retrying and reopening", "output", id, "active", on, "err", err, "retry_s", outputRetry.Seconds())
	d.condition(engine.Condition{Class: engine.ClassTrouble, Kind: troubleOutputFailed, Output: id, Active: true,
		Time: d.clk.Now(), Detail: fmt.Sprintf("%s cannot be driven %s: %v", id, onOff(on), err)})
	d.rec.add("output", "", "", false, map[string]any{"output": id, "active": on, "failed": err.Error()})
	if eng := d.eng; eng != nil && on {
		detail := err.Error()
		a.note(func() { eng.OutputFailed(id, detail) })
	}
}

// restored undoes failed once the output took its level.
func (a *actuator) restored(id string, on bool) {
	d := a.d
	d.log.Info("output driven again", "output", id, "active", on)
	d.condition(engine.Condition{Class: engine.ClassTrouble, Kind: troubleOutputFailed, Output: id, Active: false, Time: d.clk.Now()})
	d.rec.add("output", "", "", false, map[string]any{"output": id, "active": on, "restored": true})
	if eng := d.eng; eng != nil && on {
		a.note(func() { eng.OutputRestored(id) })
	}
}

// troubleOutputFailed is raised while an output cannot be driven.
const troubleOutputFailed = "output_failed"

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// maxHeaderBytes bounds a request's headers on both listeners (net/http's
// default is 1 MiB).
const maxHeaderBytes = 16 << 10

// serveHTTP opens both listeners and serves them (http.go); stop closes
// them and every connection.
func (d *Daemon) serveHTTP() (stop func(), err error) {
	cfg := d.cfg
	c, err := console.New(console.Options{Engine: d.eng, Config: cfg, Connected: d.pub.Connected, Clock: d.clk, Logger: d.log, Record: d.rec.add,
		Counted: func(verb, result string) { d.metrics.commands.WithLabelValues(verb, result).Inc() }, Registerer: d.metrics.Registry})
	if err != nil {
		d.log.Error("staff console not served", "err", err)
	} else {
		d.console = c
	}
	tlsCfg, err := localTLS(cfg.HTTP.LocalTLS, cfg)
	if err != nil {
		return nil, err
	}
	if d.httpLn, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
		return nil, fmt.Errorf("daemon: http.listen: %w", err)
	}
	if d.localLn, err = net.Listen("tcp", cfg.HTTP.LocalListen); err != nil {
		d.httpLn.Close()
		return nil, fmt.Errorf("daemon: http.local_listen: %w", err)
	}
	// Both listeners bound what one client may hold: small headers, and
	// idle or slow connections closed. The local one has no write
	// deadline: the console's event stream is long-lived (and capped).
	ops := &http.Server{Handler: d.opsRoutes(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: maxHeaderBytes}
	local := &http.Server{Handler: d.localRoutes(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		IdleTimeout: time.Minute, MaxHeaderBytes: maxHeaderBytes, TLSConfig: tlsCfg}
	var serving sync.WaitGroup
	serving.Go(func() { ops.Serve(d.httpLn) })
	serving.Go(func() {
		if tlsCfg != nil {
			local.ServeTLS(d.localLn, "", "")
		} else {
			local.Serve(d.localLn)
		}
	})
	return func() {
		ops.Close()
		local.Close()
		serving.Wait()
	}, nil
}

// compactLoop drops retired outbox entries past their retention, hourly.
func (d *Daemon) compactLoop(ctx context.Context) {
	clock.Every(d.clk, time.Hour, func(time.Time) {
		if n, err := d.store.Compact(d.clk.Now()); err != nil {
			d.log.Warn("journal compaction", "err", err)
		} else if n > 0 {
			d.log.Info("journal compaction", "removed", n)
		}
	})(ctx)
}
