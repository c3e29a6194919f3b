package daemon

import (
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/devices"
)

// Metrics is the daemon's Prometheus instrumentation, on its own registry.
// Every label value comes from the config or a fixed set, never a payload.
type Metrics struct {
	Registry *prometheus.Registry

	inputActive    *prometheus.GaugeVec
	inputEdges     *prometheus.CounterVec
	inputLost      *prometheus.CounterVec
	inputFault     *prometheus.GaugeVec
	handoffDropped *prometheus.CounterVec
	incidentsOpen  *prometheus.GaugeVec
	incidentsTotal *prometheus.CounterVec
	queueLength    prometheus.Gauge
	queueRate      prometheus.Gauge
	queueSurge     prometheus.Gauge
	queueArrivals  prometheus.Counter
	queueDeparts   prometheus.Counter
	reportsPub     *prometheus.CounterVec
	reportsFailed  *prometheus.CounterVec
	reportsPending prometheus.Gauge
	latency        prometheus.Histogram
	mqttConnected  prometheus.Gauge
	outputActive   *prometheus.GaugeVec
	outputFailed   *prometheus.GaugeVec
	trouble        *prometheus.GaugeVec
	commands       *prometheus.CounterVec
	redelivered    prometheus.Counter
	journalDropped prometheus.Counter

	mu       sync.Mutex
	open     map[string]string // incident id -> playbook, while open
	lastQ    engine.QueueState
	lastEdge map[string]uint64
	lastLost map[string]uint64
}

// Version is set at build time with -ldflags "-X ...daemon.Version=...".
var Version = "dev"

// NewMetrics registers every hallguard metric for cfg on a new registry.
func NewMetrics(cfg *config.Config) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry(), open: map[string]string{}, lastEdge: map[string]uint64{}, lastLost: map[string]uint64{}}
	m.newCollectors()
	m.register()
	m.zeroKnownLabels(cfg)
	return m
}

// newCollectors makes hallguard's own metrics, not yet registered.
func (m *Metrics) newCollectors() {
	m.inputActive = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hallguard_input_active",
		Help: "1 while the input is active (pressed, smoke, loop open), after debounce and contact type."}, []string{"input", "kind"})
	m.inputEdges = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hallguard_input_changes_total",
		Help: "Conditioned state changes of the input."}, []string{"input"})
	m.inputLost = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hallguard_input_lost_edges_total",
		Help: "Edges lost before they reached hallguard (kernel event buffer overflow, seen as line sequence gaps)."}, []string{"input"})
	m.inputFault = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hallguard_input_fault",
		Help: "1 while the input has the fault: stuck (trouble), loop_open (tamper), line_lost (trouble)."}, []string{"input", "fault"})
	m.handoffDropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hallguard_input_handoff_dropped_total",
		Help: "Edges dropped between the backend and conditioning because the hand-off buffer was full."}, []string{"input"})
	m.incidentsOpen = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hallguard_incidents_active",
		Help: "Incidents not yet resolved (active or acknowledged), by playbook."}, []string{"playbook", "drill"})
	m.incidentsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hallguard_incidents_total",
		Help: "Incidents raised, by playbook and origin."}, []string{"playbook", "origin", "drill"})
	m.queueLength = prometheus.NewGauge(prometheus.GaugeOpts{Name: "hallguard_queue_length", Help: "Customers in the queue (§4.1), from arrival and departure pulses."})
	m.queueRate = prometheus.NewGauge(prometheus.GaugeOpts{Name: "hallguard_queue_arrival_rate_per_second", Help: "Arrivals per second over the queue model's rate window."})
	m.queueSurge = prometheus.NewGauge(prometheus.GaugeOpts{Name: "hallguard_queue_surge", Help: "1 while the queue model is in surge (§4.1)."})
	m.queueArrivals = prometheus.NewCounter(prometheus.CounterOpts{Name: "hallguard_queue_arrivals_total", Help: "Arrival pulses counted."})
	m.queueDeparts = prometheus.NewCounter(prometheus.CounterOpts{Name: "hallguard_queue_departures_total", Help: "Departure pulses counted."})
	m.reportsPub = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hallguard_reports_published_total",
		Help: "Incident reports acknowledged by the broker (PUBACK), by playbook."}, []string{"playbook"})
	m.reportsFailed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hallguard_reports_failed_total",
		Help: "Report publish attempts that failed and will be retried, by playbook."}, []string{"playbook"})
	m.reportsPending = prometheus.NewGauge(prometheus.GaugeOpts{Name: "hallguard_reports_pending", Help: "Reports waiting for a PUBACK."})
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hallguard_report_latency_seconds",
		Help:    "From the input event's timestamp to the PUBACK of the report it raised.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}})
	m.mqttConnected = prometheus.NewGauge(prometheus.GaugeOpts{Name: "hallguard_mqtt_connected", Help: "1 while connected to the MQTT broker."})
	m.outputActive = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hallguard_output_active",
		Help: "1 while the output is driven active: set once the line took the level, never on a failed drive."}, []string{"output"})
	m.outputFailed = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hallguard_output_failed",
		Help: "1 while the output cannot be driven to the level wanted (trouble output_failed; retried and reopened)."}, []string{"output"})
	m.trouble = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hallguard_condition_active",
		Help: "1 while a condition is active, by class (trouble, tamper, supervisory) and kind."}, []string{"class", "kind"})
	m.commands = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hallguard_commands_total",
		Help: "Commands received, by verb and result (ok or the rejection reason)."}, []string{"verb", "result"})
	m.redelivered = prometheus.NewCounter(prometheus.CounterOpts{Name: "hallguard_reports_redelivered_total",
		Help: "Reports sent again after a restart (replayed from the durable outbox, redelivered: true)."})
	m.journalDropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "hallguard_journal_records_dropped_total",
		Help: "Journal records (not reports) dropped because the in-memory backlog was full while the disk failed."})
}

// register registers m's metrics, the build information, the Go and
// process collectors and, where the kernel says, the clock's sync state.
func (m *Metrics) register() {
	f := func(c prometheus.Collector) { m.Registry.MustRegister(c) }
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hallguard_build_info", Help: "Build information; the value is 1."}, []string{"version", "goversion", "revision"})
	rev := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	build.WithLabelValues(Version, runtime.Version(), rev).Set(1)
	for _, c := range []prometheus.Collector{m.inputActive, m.inputEdges, m.inputLost, m.inputFault, m.handoffDropped,
		m.incidentsOpen, m.incidentsTotal, m.queueLength, m.queueRate, m.queueSurge, m.queueArrivals, m.queueDeparts,
		m.reportsPub, m.reportsFailed, m.reportsPending, m.latency, m.mqttConnected, m.outputActive, m.outputFailed, m.trouble, m.commands, build,
		m.redelivered, m.journalDropped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	if _, ok := clockSynchronized(); ok {
		f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hallguard_clock_synchronized",
			Help: "1 while the kernel reports the system clock synchronised (adjtimex); report times depend on it."},
			func() float64 { s, _ := clockSynchronized(); return b2f(s) }))
	}
}

// zeroKnownLabels starts the label values cfg knows at 0, so dashboards
// and alerts see them.
func (m *Metrics) zeroKnownLabels(cfg *config.Config) {
	for _, in := range cfg.Inputs {
		m.inputActive.WithLabelValues(in.ID, in.Kind)
		m.inputEdges.WithLabelValues(in.ID)
		m.inputLost.WithLabelValues(in.ID)
		m.handoffDropped.WithLabelValues(in.ID)
		for _, f := range inputFaults {
			m.inputFault.WithLabelValues(in.ID, f)
		}
	}
	for _, o := range cfg.Outputs {
		m.outputActive.WithLabelValues(o.ID)
		m.outputFailed.WithLabelValues(o.ID)
	}
	for _, k := range []string{"journal_degraded", "journal_recovered", "journal_slow", "journal_unreadable"} {
		m.trouble.WithLabelValues("trouble", k)
	}
	for _, p := range cfg.Playbooks {
		m.incidentsOpen.WithLabelValues(p.ID, "false")
		m.reportsPub.WithLabelValues(p.ID)
		m.reportsFailed.WithLabelValues(p.ID)
	}
	for _, v := range engine.Verbs {
		m.commands.WithLabelValues(v.String(), "ok")
	}
}

func boolLabel(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// report accounts for a report the engine made.
func (m *Metrics) report(r engine.Report) {
	m.mu.Lock()
	defer m.mu.Unlock()
	drill := boolLabel(r.Drill || r.Test) // a walk test's hold-up press is no real robbery
	if r.Event == engine.EventRaised {
		m.incidentsTotal.WithLabelValues(r.Playbook, r.Origin.String(), drill).Inc()
	}
	_, wasOpen := m.open[r.Incident]
	isOpen := r.State == engine.StateActive || r.State == engine.StateAcknowledged
	switch {
	case isOpen && !wasOpen:
		m.open[r.Incident] = r.Playbook
		m.incidentsOpen.WithLabelValues(r.Playbook, drill).Inc()
	case !isOpen && wasOpen:
		delete(m.open, r.Incident)
		m.incidentsOpen.WithLabelValues(r.Playbook, drill).Dec()
	}
}

// inputFaults are the fault label values of hallguard_input_fault.
var inputFaults = []string{string(devices.FaultStuck), string(devices.FaultLoopOpen), string(devices.FaultLineLost)}

func (m *Metrics) input(s engine.InputState) {
	m.inputActive.WithLabelValues(s.ID, s.Kind).Set(b2f(s.Active))
	for _, f := range inputFaults {
		m.inputFault.WithLabelValues(s.ID, f).Set(b2f(slices.Contains(s.Faults, f)))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if d := s.Edges - m.lastEdge[s.ID]; s.Edges > m.lastEdge[s.ID] {
		m.inputEdges.WithLabelValues(s.ID).Add(float64(d))
		m.lastEdge[s.ID] = s.Edges
	}
	if d := s.LostEdges - m.lastLost[s.ID]; s.LostEdges > m.lastLost[s.ID] {
		m.inputLost.WithLabelValues(s.ID).Add(float64(d))
		m.lastLost[s.ID] = s.LostEdges
	}
}

func (m *Metrics) queue(q engine.QueueState) {
	m.queueLength.Set(float64(q.Length))
	m.queueRate.Set(q.Rate / 60)
	m.queueSurge.Set(b2f(q.Surge))
	m.mu.Lock()
	defer m.mu.Unlock()
	if q.Arrivals > m.lastQ.Arrivals {
		m.queueArrivals.Add(float64(q.Arrivals - m.lastQ.Arrivals))
	}
	if q.Departures > m.lastQ.Departures {
		m.queueDeparts.Add(float64(q.Departures - m.lastQ.Departures))
	}
	m.lastQ = q
}

func (m *Metrics) condition(c engine.Condition) {
	if c.Input != "" {
		return // per-input faults are in hallguard_input_fault
	}
	if c.Output != "" {
		m.outputFailed.WithLabelValues(c.Output).Set(b2f(c.Active)) // per output
		return
	}
	m.trouble.WithLabelValues(c.Class.String(), c.Kind).Set(b2f(c.Active))
}

func (m *Metrics) acked(r engine.Report, at time.Time) {
	m.reportsPub.WithLabelValues(r.Playbook).Inc()
	if !r.Trigger.IsZero() {
		m.latency.Observe(at.Sub(r.Trigger).Seconds())
	}
}
