//go:build fault

package test

// Helpers of the fault tests (fault_test.go): Debian's mosquitto as a child
// process, the hallguard binary started, SIGKILLed and restarted on one
// state directory, a collector that plays the monitoring center, a signed
// command client, a load driver, and a wire tap between hallguard and
// mosquitto. Every process is started here and stopped by its PID.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	yaml "go.yaml.in/yaml/v3"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/mqtt/command"

	"github.com/hallguard/hallguard/test/hallproc"
)

// faultRoot is the topic root of configs/demo.yaml's hall.
const faultRoot = "hallguard/demo-hall"

// ---------------------------------------------------------------------------
// mosquitto

// startFaultMosquitto runs mosquitto on configs/mosquitto/mosquitto.conf.
func startFaultMosquitto(t *testing.T) *mosquitto {
	t.Helper()
	return startMosquitto(t, mosquittoDir(t), "mosquitto.conf", 1, nil)
}

// ---------------------------------------------------------------------------
// hallguard config and process

// faultButtons are the generic inputs the test config adds to the demo
// hall, so that manual playbooks can be raised through the sim socket,
// without MQTT.
var faultButtons = []map[string]any{
	{"id": "btn-illness", "name": "Illness button", "kind": "generic", "line": 2, "playbook": "illness"},
	{"id": "btn-disturbance", "name": "Disturbance button", "kind": "generic", "line": 3, "playbook": "disturbance"},
}

// writeFaultConfig writes configs/demo.yaml with an external broker,
// absolute playbooks_dir and key_file, and the fault buttons, and then
// extra (more top-level YAML sections, or ""), into dir, and checks it
// with `hallguard check`.
func writeFaultConfig(t *testing.T, dir, broker, extra string) string {
	t.Helper()
	root := repoRoot(t)
	src, err := os.ReadFile(filepath.Join(root, "configs", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(src, &cfg); err != nil {
		t.Fatal(err)
	}
	mq, _ := cfg["mqtt"].(map[string]any)
	if mq == nil {
		mq = map[string]any{}
	}
	delete(mq, "listen")
	mq["broker"] = broker
	mq["max_reconnect"] = "2s"
	mq["connect_timeout"] = "3s"
	mq["write_timeout"] = "5s"
	mq["keepalive"] = "10s"
	cfg["mqtt"] = mq
	cfg["playbooks_dir"] = filepath.Join(root, "configs", "playbooks")
	cfg["state_dir"] = filepath.Join(dir, "unused-state") // -state-dir overrides it
	cmds, _ := cfg["commands"].(map[string]any)
	if cmds == nil {
		t.Fatal("configs/demo.yaml has no commands section")
	}
	cmds["key_file"] = filepath.Join(root, "configs", "demo-command.key")
	inputs, _ := cfg["inputs"].([]any)
	for _, b := range faultButtons {
		inputs = append(inputs, b)
	}
	cfg["inputs"] = inputs
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "hallguard.yaml")
	if err := os.WriteFile(path, append(out, extra...), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(hallguardBin(t), "check", "-config", path).CombinedOutput(); err != nil {
		t.Fatalf("hallguard check %s: %v\n%s", path, err, b)
	}
	return path
}

// faultHall is hallguard run on one config and state directory, started
// again after every kill.
type faultHall struct {
	t        *testing.T
	bin      string
	config   string
	stateDir string
	http     string
	local    string // -local-listen: /api/*
	client   *http.Client

	mu   sync.Mutex
	cur  *faultProc
	runs []*faultProc
}

// faultProc is one process.
type faultProc struct {
	n       int
	p       *hallproc.Proc
	logs    *hallproc.Log
	started time.Time // taken before the process exists
	killed  bool
}

func newFaultHall(t *testing.T, config, stateDir string) *faultHall {
	t.Helper()
	ports := freePorts(t, 2)
	h := &faultHall{t: t, bin: hallguardBin(t), config: config, stateDir: stateDir, http: ports[0], local: ports[1],
		client: &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(h.stop)
	return h
}

// start runs hallguard and waits until /healthz says ready (and connected,
// when asked).
func (h *faultHall) start(connected bool) *faultProc {
	h.t.Helper()
	r := &faultProc{logs: &hallproc.Log{}}
	cmd := exec.Command(h.bin, "run", "-config", h.config, "-state-dir", h.stateDir, "-http-listen", h.http, "-local-listen", h.local)
	cmd.Stdout, cmd.Stderr = r.logs, r.logs
	h.mu.Lock()
	r.n = len(h.runs) + 1
	r.started = time.Now()
	p, err := hallproc.Start(cmd)
	if err != nil {
		h.mu.Unlock()
		h.t.Fatal(err)
	}
	r.p = p
	h.cur = r
	h.runs = append(h.runs, r)
	h.mu.Unlock()
	err = hallproc.WaitHealth(h.client, h.http, r.p.Exited, 60*time.Second, 30*time.Millisecond, func(hh hallproc.Health) bool {
		return hh.Ready && (hh.Connected || !connected)
	})
	switch {
	case errors.Is(err, hallproc.ErrExited):
		h.t.Fatalf("hallguard run %d exited before ready:\n%s", r.n, r.logs)
	case err != nil:
		h.t.Fatalf("hallguard run %d not ready (connected %v) after 60s:\n%s", r.n, connected, r.logs)
	}
	return r
}

// take makes the running hallguard no longer the current run and returns
// it (nil when none runs).
func (h *faultHall) take() *faultProc {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.cur
	h.cur = nil
	return r
}

// kill SIGKILLs the running hallguard by its PID and waits for it.
func (h *faultHall) kill() {
	if r := h.take(); r != nil {
		r.killed = true
		r.p.Kill()
	}
}

// stop sends SIGTERM to the running hallguard's PID and waits for it (it
// flushes pending reports for up to 5s on the way down).
func (h *faultHall) stop() {
	r := h.take()
	if r == nil {
		return
	}
	if !r.p.End(syscall.SIGTERM, 30*time.Second) {
		h.t.Errorf("hallguard run %d did not stop on SIGTERM within 30s", r.n)
	}
	if ec := r.p.Cmd.ProcessState.ExitCode(); ec != 0 {
		h.t.Errorf("hallguard run %d exited with %d on SIGTERM:\n%s", r.n, ec, faultTail(r.logs.String(), 40))
	}
}

func (h *faultHall) allRuns() []*faultProc {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.runs)
}

func (h *faultHall) logs() string {
	var b strings.Builder
	for _, r := range h.allRuns() {
		fmt.Fprintf(&b, "=== run %d\n%s", r.n, r.logs)
	}
	return b.String()
}

// get reads path from the daemon: /metrics and /healthz from the
// operations listener, everything else (/api/*) from the local one.
func (h *faultHall) get(path string) ([]byte, error) {
	addr := h.local
	if path == "/metrics" || path == "/healthz" {
		addr = h.http
	}
	resp, err := h.client.Get("http://" + addr + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return b, err
}

func (h *faultHall) healthz() (ready, connected bool, err error) {
	hh, err := hallproc.GetHealth(h.client, h.http)
	return hh.Ready, hh.Connected, err
}

// metric returns one sample of /metrics ("" when absent or on error).
// /metrics is on the operations listener (-http-listen), not the local one.
func (h *faultHall) metric(name string) string {
	b, err := h.get("/metrics") // the operations listener (get)
	if err != nil {
		return ""
	}
	v, _ := hallproc.Sample(string(b), name)
	return v
}

// incidents returns the open incidents (every use here wants those; the
// API pages, newest first, and holds resolved ones too).
func (h *faultHall) incidents() ([]engine.Incident, error) {
	b, err := h.get("/api/incidents?state=open&limit=1000")
	if err != nil {
		return nil, err
	}
	var incs []engine.Incident
	err = json.Unmarshal(b, &incs)
	return incs, err
}

// pulse presses the inputs on the sim socket, holds them past the 20 ms
// debounce and releases them. Errors (no daemon) are returned, not fatal.
func (h *faultHall) pulse(inputs ...string) error {
	if len(inputs) == 0 {
		return nil
	}
	sock := filepath.Join(h.stateDir, "sim.sock")
	var errs []error
	for _, in := range inputs {
		if _, err := faultSimSend(sock, "press "+in); err != nil {
			errs = append(errs, err)
		}
	}
	time.Sleep(40 * time.Millisecond)
	for _, in := range inputs {
		if _, err := faultSimSend(sock, "release "+in); err != nil {
			errs = append(errs, err)
		}
	}
	// a release and the next press within the debounce are bounce
	time.Sleep(40 * time.Millisecond)
	return errors.Join(errs...)
}

func faultSimSend(sock, req string) (string, error) {
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintln(c, req); err != nil {
		return "", err
	}
	a, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(a, "error: ") {
		return "", errors.New(strings.TrimSpace(a))
	}
	return strings.TrimSpace(a), nil
}

// waitOutboxEmpty waits until hallguard_outbox_pending is 0.
func (h *faultHall) waitOutboxEmpty(d time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(d)
	for h.metric("hallguard_outbox_pending") != "0" {
		if time.Now().After(deadline) {
			h.t.Fatalf("hallguard_outbox_pending = %q after %s\n%s", h.metric("hallguard_outbox_pending"), d, faultTail(h.logs(), 60))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// faultJournalReport is one "report" record of the journal.
type faultJournalReport struct {
	Seq       uint64 // journal seq
	Time      time.Time
	ID        string
	ReportSeq uint64 // the report's own seq (engine.Report.Seq)
	Incident  string
	Version   int
	Event     string
	State     string
	Salvaged  bool
	// The report as sent on MQTT (mqtt/payload.go): what the DC-09
	// mapping reads.
	Playbook, Variant, Source string
	Drill                     bool
}

func faultParseReports(t *testing.T, jsonl []byte) []faultJournalReport {
	t.Helper()
	var out []faultJournalReport
	sc := bufio.NewScanner(bytes.NewReader(jsonl))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var w struct {
			Seq  uint64          `json:"seq"`
			Time time.Time       `json:"time"`
			Kind string          `json:"kind"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(sc.Bytes(), &w); err != nil {
			t.Fatalf("journal export line: %v\n%s", err, sc.Bytes())
		}
		if w.Kind != "report" {
			continue
		}
		var d struct {
			ID       string `json:"id"`
			Seq      uint64 `json:"seq"`
			Incident string `json:"incident"`
			Version  int    `json:"version"`
			Event    string `json:"event"`
			State    string `json:"state"`
			Salvaged bool   `json:"salvaged"`
			Report   struct {
				Playbook string `json:"playbook"`
				Variant  string `json:"variant"`
				Source   string `json:"source"`
				Drill    bool   `json:"drill"`
			} `json:"report"`
		}
		if err := json.Unmarshal(w.Data, &d); err != nil || d.ID == "" {
			t.Fatalf("journal report record %d: data %s: %v", w.Seq, w.Data, err)
		}
		out = append(out, faultJournalReport{Seq: w.Seq, Time: w.Time, ID: d.ID, ReportSeq: d.Seq, Incident: d.Incident,
			Version: d.Version, Event: d.Event, State: d.State, Salvaged: d.Salvaged,
			Playbook: d.Report.Playbook, Variant: d.Report.Variant, Source: d.Report.Source, Drill: d.Report.Drill})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// apiReports reads the report records from the running daemon's API.
func (h *faultHall) apiReports() []faultJournalReport {
	h.t.Helper()
	b, err := h.get("/api/journal/export?kind=report")
	if err != nil {
		h.t.Fatal(err)
	}
	return faultParseReports(h.t, b)
}

// fileReports reads the report records from the journal file with
// `hallguard journal export` (the daemon must be stopped).
func (h *faultHall) fileReports() []faultJournalReport {
	h.t.Helper()
	out, err := exec.Command(h.bin, "journal", "export", "-config", h.config, "-kind", "report",
		"-file", filepath.Join(h.stateDir, "hallguard.db")).Output()
	if err != nil {
		h.t.Fatalf("hallguard journal export: %v", err)
	}
	return faultParseReports(h.t, out)
}

// journalCLI runs `hallguard journal ARGS -config C -file F` and returns
// its output and exit code.
func (h *faultHall) journalCLI(file string, args ...string) (string, int) {
	a := append([]string{"journal"}, args...)
	a = append(a, "-config", h.config, "-file", file)
	out, err := exec.Command(h.bin, a...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	h.t.Fatalf("hallguard %v: %v", a, err)
	return "", -1
}

var (
	faultReportLog = regexp.MustCompile(`msg=report id=(\S+)`)
	faultReplayLog = regexp.MustCompile(`msg="replaying reports not yet acknowledged" reports=(\d+)`)
)

// faultLoggedReports returns the report ids a run logged (each logged once,
// right after the engine made it and it was pushed to the outbox).
func faultLoggedReports(logs string) []string {
	var ids []string
	for _, m := range faultReportLog.FindAllStringSubmatch(logs, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func faultTail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// ---------------------------------------------------------------------------
// collector: the monitoring center

// faultArrival is one copy of a report as the center received it.
type faultArrival struct {
	ID, Incident, Event, State string
	Version                    int
	Redelivered                bool
	Dup                        bool // the broker's DUP flag: a broker resend
	SentAt                     time.Time
	At                         time.Time
	Topic                      string
}

// faultCollector subscribes, as the center does, with a persistent session
// (CleanSession false, a fixed client id), at QoS 1, to alerts/# and
// drills/alerts/#, reconnecting by itself and subscribing again on every
// connection (a broker without persistence forgets the session). It
// records every report copy in arrival order.
type faultCollector struct {
	t   *testing.T
	c   paho.Client
	gen func() int64

	mu       sync.Mutex
	arrivals []faultArrival
	seen     map[string]int
	changed  chan struct{}
	bad      []string
	subGen   atomic.Int64 // broker generation of the last confirmed SUBACK
	connects atomic.Int64
}

// faultClientOptions are what the center's two fault clients share:
// MQTT 3.1.1, client id name-PID, reconnecting every 100 ms at most.
func faultClientOptions(broker, name string, clean bool) *paho.ClientOptions {
	return paho.NewClientOptions().AddBroker("tcp://" + broker).
		SetClientID(fmt.Sprintf("%s-%d", name, os.Getpid())).
		SetProtocolVersion(4).
		SetCleanSession(clean).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(100 * time.Millisecond).
		SetConnectTimeout(2 * time.Second).
		SetKeepAlive(10 * time.Second)
}

func newFaultCollector(t *testing.T, broker string, gen func() int64) *faultCollector {
	t.Helper()
	col := &faultCollector{t: t, gen: gen, seen: map[string]int{}, changed: make(chan struct{})}
	filters := map[string]byte{faultRoot + "/alerts/#": 1, faultRoot + "/drills/alerts/#": 1}
	opts := faultClientOptions(broker, "fault-center", false).
		SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { col.record(m) })
	opts.SetOnConnectHandler(func(c paho.Client) {
		col.connects.Add(1)
		// The generation is bumped after a broker is killed and before the
		// next one starts. Read after this connection was made, g is the
		// generation of the broker connected to, or that broker is dead
		// already and cannot answer the SUBSCRIBE: a SUBACK proves that
		// broker generation g has the subscription.
		g := col.gen()
		tok := c.SubscribeMultiple(filters, nil)
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			return // the connection is failing; the next one subscribes again
		}
		for { // keep the newest: an older handler may finish late
			cur := col.subGen.Load()
			if cur >= g || col.subGen.CompareAndSwap(cur, g) {
				break
			}
		}
	})
	col.c = paho.NewClient(opts)
	if tok := col.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("collector connect: %v", tok.Error())
	}
	t.Cleanup(func() { col.c.Disconnect(100) })
	col.waitSubscribed(gen())
	return col
}

func (col *faultCollector) record(m paho.Message) {
	var r struct {
		ID          string    `json:"id"`
		Incident    string    `json:"incident"`
		Version     int       `json:"version"`
		Event       string    `json:"event"`
		State       string    `json:"state"`
		Redelivered bool      `json:"redelivered"`
		SentAt      time.Time `json:"sent_at"`
	}
	err := json.Unmarshal(m.Payload(), &r)
	col.mu.Lock()
	defer col.mu.Unlock()
	if err != nil || r.ID == "" {
		col.bad = append(col.bad, fmt.Sprintf("%s: %.200s", m.Topic(), m.Payload()))
		return
	}
	col.arrivals = append(col.arrivals, faultArrival{ID: r.ID, Incident: r.Incident, Event: r.Event, State: r.State,
		Version: r.Version, Redelivered: r.Redelivered, Dup: m.Duplicate(), SentAt: r.SentAt, At: time.Now(), Topic: m.Topic()})
	col.seen[r.ID]++
	close(col.changed)
	col.changed = make(chan struct{})
}

func (col *faultCollector) waitSubscribed(gen int64) {
	col.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for col.subGen.Load() != gen {
		if time.Now().After(deadline) {
			col.t.Fatalf("collector not subscribed on broker generation %d after 60s (at %d)", gen, col.subGen.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (col *faultCollector) has(id string) bool {
	col.mu.Lock()
	defer col.mu.Unlock()
	return col.seen[id] > 0
}

// wait blocks until the collector holds a copy of id (true) or done is
// closed (false).
func (col *faultCollector) wait(id string, done <-chan struct{}) bool {
	return faultCollectorUntil(col, func() bool { return col.seen[id] > 0 }, done)
}

// waitCount waits up to d until the collector holds more than n copies.
func (col *faultCollector) waitCount(n int, d time.Duration) bool {
	return faultCollectorUntil(col, func() bool { return len(col.arrivals) > n }, time.After(d))
}

// faultCollectorUntil blocks until ok, checked under col.mu at each change
// the collector signals, holds (true) or stop delivers (false).
func faultCollectorUntil[T any](col *faultCollector, ok func() bool, stop <-chan T) bool {
	for {
		col.mu.Lock()
		done, ch := ok(), col.changed
		col.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-ch:
		case <-stop:
			return false
		}
	}
}

func (col *faultCollector) count() int {
	col.mu.Lock()
	defer col.mu.Unlock()
	return len(col.arrivals)
}

// waitAll waits up to d for every id and returns those still missing.
func (col *faultCollector) waitAll(ids []string, d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		var missing []string
		col.mu.Lock()
		for _, id := range ids {
			if col.seen[id] == 0 {
				missing = append(missing, id)
			}
		}
		ch := col.changed
		col.mu.Unlock()
		if len(missing) == 0 || time.Now().After(deadline) {
			return missing
		}
		select {
		case <-ch:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (col *faultCollector) snapshot() ([]faultArrival, []string) {
	col.mu.Lock()
	defer col.mu.Unlock()
	return slices.Clone(col.arrivals), slices.Clone(col.bad)
}

// ---------------------------------------------------------------------------
// commander: the center's signed commands

type faultCommander struct {
	c       paho.Client
	key     command.Signer
	n       atomic.Int64
	mu      sync.Mutex
	wait    map[string]chan reply
	replies map[string]reply // every reply, by command id
}

func newFaultCommander(t *testing.T, broker string) *faultCommander {
	t.Helper()
	fc := &faultCommander{key: demoKey(t), wait: map[string]chan reply{}, replies: map[string]reply{}}
	opts := faultClientOptions(broker, "fault-commander", true)
	opts.SetOnConnectHandler(func(c paho.Client) {
		c.Subscribe(faultRoot+"/cmd/reply", 1, func(_ paho.Client, m paho.Message) {
			var r reply
			if json.Unmarshal(m.Payload(), &r) != nil {
				return
			}
			fc.mu.Lock()
			ch := fc.wait[r.ID]
			delete(fc.wait, r.ID)
			if fc.replies != nil {
				fc.replies[r.ID] = r
			}
			fc.mu.Unlock()
			if ch != nil {
				ch <- r
			}
		}).WaitTimeout(5 * time.Second)
	})
	fc.c = paho.NewClient(opts)
	if tok := fc.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("commander connect: %v", tok.Error())
	}
	t.Cleanup(func() { fc.c.Disconnect(100) })
	return fc
}

// send signs and publishes a command and waits up to d for its reply; ok is
// false when none came (broker or daemon away).
func (fc *faultCommander) send(verb string, m command.Message, d time.Duration) (reply, bool) {
	if !fc.c.IsConnectionOpen() {
		return reply{}, false
	}
	m.ID = fmt.Sprintf("fault-%s-%d", verb, fc.n.Add(1))
	if m.By == "" {
		m.By = "center-op-fault"
	}
	p, err := command.Sign(fc.key, "demo-hall", faultRoot+"/cmd/"+verb, m, time.Now())
	if err != nil {
		panic(err)
	}
	ch := make(chan reply, 1)
	fc.mu.Lock()
	fc.wait[m.ID] = ch
	fc.mu.Unlock()
	defer func() {
		fc.mu.Lock()
		delete(fc.wait, m.ID)
		fc.mu.Unlock()
	}()
	tok := fc.c.Publish(faultRoot+"/cmd/"+verb, 1, false, p)
	if !tok.WaitTimeout(d) || tok.Error() != nil {
		return reply{}, false
	}
	select {
	case r := <-ch:
		return r, true
	case <-time.After(d):
		return reply{}, false
	}
}

// fire signs and publishes a command without waiting for its reply, and
// returns its id ("" when not connected).
func (fc *faultCommander) fire(verb string, m command.Message) string {
	if !fc.c.IsConnectionOpen() {
		return ""
	}
	m.ID = fmt.Sprintf("fault-%s-%d", verb, fc.n.Add(1))
	if m.By == "" {
		m.By = "center-op-fault"
	}
	if p, err := command.Sign(fc.key, "demo-hall", faultRoot+"/cmd/"+verb, m, time.Now()); err == nil {
		fc.c.Publish(faultRoot+"/cmd/"+verb, 1, false, p).WaitTimeout(2 * time.Second)
	}
	return m.ID
}

func (fc *faultCommander) reply(id string) (reply, bool) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	r, ok := fc.replies[id]
	return r, ok
}

// mustSend sends a command that must succeed.
func (fc *faultCommander) mustSend(t *testing.T, verb string, m command.Message) reply {
	t.Helper()
	for try := 0; ; try++ {
		r, ok := fc.send(verb, m, 10*time.Second)
		if ok {
			if r.Result != "ok" {
				t.Fatalf("%s %+v: reply %+v", verb, m, r)
			}
			return r
		}
		if try == 2 {
			t.Fatalf("%s %+v: no reply", verb, m)
		}
	}
}

// faultCycle raises a manual playbook with a signed trigger, does each of its
// steps and resolves it: 2 + steps reports. It returns the incident id.
func faultCycle(t *testing.T, h *faultHall, fc *faultCommander, playbook string) string {
	t.Helper()
	r := fc.mustSend(t, "trigger", command.Message{Playbook: playbook})
	incs, err := h.incidents()
	if err != nil {
		t.Fatal(err)
	}
	for _, inc := range incs {
		if inc.ID != r.Incident {
			continue
		}
		for _, st := range inc.Steps {
			fc.mustSend(t, "step", command.Message{Incident: inc.ID, Step: st.ID, Records: faultStepRecords(st)})
		}
	}
	fc.mustSend(t, "resolve", command.Message{Incident: r.Incident})
	return r.Incident
}

func faultStepRecords(st engine.StepState) []string {
	var rec []string
	for _, what := range st.Records {
		rec = append(rec, "fault test "+what)
	}
	return rec
}

// ---------------------------------------------------------------------------
// load driver

// faultLoad keeps raising and moving incidents: sim presses of the panic
// button, the call point and the generic buttons whenever their playbook
// has no open incident (these work without MQTT), and, while both the
// commander and hallguard are connected, signed commands: trigger injury
// and media, step through open incidents, ack and resolve them (the center
// resolves robbery and fire).
type faultLoad struct {
	h    *faultHall
	fc   *faultCommander
	stop chan struct{}
	done chan struct{}
	rng  *rand.Rand

	haltOnce sync.Once

	presses, commands, unanswered, refused atomic.Int64
}

var faultLoadButtons = map[string]string{ // input → playbook
	"panic-teller-1":  "robbery",
	"callpoint-exit":  "fire",
	"btn-illness":     "illness",
	"btn-disturbance": "disturbance",
}

var faultLoadTriggered = []string{"injury", "media"}

func startFaultLoad(h *faultHall, fc *faultCommander, seed uint64) *faultLoad {
	l := &faultLoad{h: h, fc: fc, stop: make(chan struct{}), done: make(chan struct{}), rng: rand.New(rand.NewPCG(seed, 7))}
	go l.loop()
	return l
}

func (l *faultLoad) halt() {
	l.haltOnce.Do(func() { close(l.stop) })
	<-l.done
}

func (l *faultLoad) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

func (l *faultLoad) loop() {
	defer close(l.done)
	for !l.stopped() {
		pause := 20 * time.Millisecond
		if !l.once() {
			pause = 100 * time.Millisecond
		}
		select {
		case <-l.stop:
		case <-time.After(pause):
		}
	}
}

// once is one round; false when the daemon could not be reached.
func (l *faultLoad) once() bool {
	_, hgConnected, err := l.h.healthz()
	if err != nil {
		return false
	}
	incs, err := l.h.incidents()
	if err != nil {
		return false
	}
	open := map[string]*engine.Incident{}
	for i := range incs {
		if inc := &incs[i]; !inc.Drill && (inc.State == engine.StateActive || inc.State == engine.StateAcknowledged) {
			open[inc.Playbook] = inc
		}
	}
	var press []string
	for in, pb := range faultLoadButtons {
		if open[pb] == nil {
			press = append(press, in)
		}
	}
	sort.Strings(press)
	if l.h.pulse(press...) == nil {
		l.presses.Add(int64(len(press)))
	}
	if !hgConnected || !l.fc.c.IsConnectionOpen() {
		return true
	}
	send := func(verb string, m command.Message) bool {
		if l.stopped() {
			return false
		}
		r, ok := l.fc.send(verb, m, time.Second)
		if !ok {
			l.unanswered.Add(1)
			return false
		}
		l.commands.Add(1)
		if r.Result != "ok" {
			l.refused.Add(1) // e.g. a trigger that raced a button press
		}
		return true
	}
	for _, pb := range faultLoadTriggered {
		if open[pb] == nil && !send("trigger", command.Message{Playbook: pb, Reason: "fault test"}) {
			return true
		}
	}
	ids := make([]string, 0, len(open))
	for _, inc := range open {
		ids = append(ids, inc.ID)
	}
	sort.Strings(ids)
	for _, id := range ids {
		var inc *engine.Incident
		for _, o := range open {
			if o.ID == id {
				inc = o
			}
		}
		verb, m := l.next(inc)
		if !send(verb, m) {
			return true
		}
	}
	return true
}

// next is the next command for an open incident.
func (l *faultLoad) next(inc *engine.Incident) (string, command.Message) {
	m := command.Message{Incident: inc.ID}
	if inc.State == engine.StateActive && l.rng.IntN(3) == 0 {
		return "ack", m
	}
	if inc.Playbook != "robbery" && inc.Playbook != "fire" {
		for _, st := range inc.Steps {
			if !st.Done {
				m.Step, m.Records = st.ID, faultStepRecords(st)
				return "step", m
			}
		}
	}
	if l.rng.IntN(8) == 0 && inc.Playbook != "robbery" && inc.Playbook != "fire" {
		m.Reason = "fault test: false alarm"
		return "false_alarm", m
	}
	return "resolve", m
}

// faultBurst fires `report` commands (one update report each) at the open
// incidents without waiting for replies, and returns the command ids by
// incident.
func faultBurst(h *faultHall, fc *faultCommander, tag string, per int, into map[string]string) int {
	incs, err := h.incidents()
	if err != nil {
		return 0
	}
	n := 0
	for _, inc := range incs {
		if inc.State != engine.StateActive && inc.State != engine.StateAcknowledged {
			continue
		}
		for j := 0; j < per; j++ {
			impact := fmt.Sprintf("fault burst %s.%d", tag, j)
			if id := fc.fire("report", command.Message{Incident: inc.ID, Impact: &impact}); id != "" {
				into[id] = inc.ID
				n++
			}
		}
	}
	return n
}

// faultMaybeBurst is the burst that half of the kills land in: a burst of
// three report updates (faultBurst with tag and into), and the kill's
// moment as soon as the center has the first of them or 0–30 ms after.
// It reports whether a burst was sent.
func faultMaybeBurst(rng *rand.Rand, h *faultHall, fc *faultCommander, col *faultCollector, tag string, into map[string]string) bool {
	if rng.IntN(2) != 0 {
		return false
	}
	seen := col.count()
	sent := faultBurst(h, fc, tag, 3, into) > 0
	if rng.IntN(2) == 0 {
		col.waitCount(seen, time.Second)
	} else {
		time.Sleep(faultRandDur(rng, 0, 30*time.Millisecond))
	}
	return sent
}

// ---------------------------------------------------------------------------
// wire tap

// faultTap is a TCP relay between hallguard and mosquitto that reads the
// MQTT 3.1.1 packets it relays. It records, per report id, every PUBACK
// mosquitto sent for the report's alerts/ and incidents/ publishes and the
// broker generation it came from: independent evidence of what the broker
// acknowledged. It relays mosquitto's PUBACK of an alerts/ publish to
// hallguard only once the collector holds a copy of that report (see
// TestFaultBrokerRestarts for why), and it admits hallguard only while its
// gate is open: a broker generation that is up and that the collector has
// subscribed on.
type faultTap struct {
	t        *testing.T
	ln       net.Listener
	upstream string
	col      *faultCollector

	mu       sync.Mutex
	gen      int64 // admitted generation, 0: closed
	acks     map[string]*faultWireAcks
	accepted int
	refused  int
	held     int // PUBACKs that had to wait for the collector
	withheld int // PUBACKs never relayed: the collector did not get the report before the connection died
	wg       sync.WaitGroup
}

type faultWireAcks struct {
	alertGens, incidentGens []int64
}

type faultPubKind uint8

const (
	faultPubOther faultPubKind = iota
	faultPubAlert
	faultPubIncident
)

type faultPubInfo struct {
	kind faultPubKind
	id   string
}

func newFaultTap(t *testing.T, upstream string, col *faultCollector) *faultTap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := &faultTap{t: t, ln: ln, upstream: upstream, col: col, acks: map[string]*faultWireAcks{}}
	tp.wg.Add(1)
	go tp.serve()
	t.Cleanup(func() { ln.Close(); tp.wg.Wait() })
	return tp
}

func (tp *faultTap) addr() string { return tp.ln.Addr().String() }

func (tp *faultTap) open(gen int64) { tp.mu.Lock(); tp.gen = gen; tp.mu.Unlock() }
func (tp *faultTap) shut()          { tp.mu.Lock(); tp.gen = 0; tp.mu.Unlock() }

func (tp *faultTap) current() int64 { tp.mu.Lock(); defer tp.mu.Unlock(); return tp.gen }

func (tp *faultTap) serve() {
	defer tp.wg.Done()
	for {
		c, err := tp.ln.Accept()
		if err != nil {
			return
		}
		tp.wg.Add(1)
		go func() {
			defer tp.wg.Done()
			tp.relay(c)
		}()
	}
}

func (tp *faultTap) relay(c net.Conn) {
	gen := tp.current()
	var up net.Conn
	var err error
	if gen != 0 {
		up, err = net.DialTimeout("tcp", tp.upstream, 2*time.Second)
	}
	// Still the same generation after the dial: the broker dialled is the
	// one admitted (the gate is shut before a broker is killed).
	if gen == 0 || err != nil || tp.current() != gen {
		if up != nil {
			up.Close()
		}
		c.Close()
		tp.mu.Lock()
		tp.refused++
		tp.mu.Unlock()
		return
	}
	tp.mu.Lock()
	tp.accepted++
	tp.mu.Unlock()
	done := make(chan struct{})
	var once sync.Once
	end := func() { once.Do(func() { close(done); c.Close(); up.Close() }) }
	var pmu sync.Mutex
	pending := map[uint16]faultPubInfo{}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // hallguard → mosquitto
		defer wg.Done()
		defer end()
		faultPipe(c, up, func(typ, flags byte, body []byte) bool {
			if typ == 3 && (flags>>1)&3 > 0 {
				if pid, pi, ok := faultParsePublish(body); ok {
					pmu.Lock()
					pending[pid] = pi
					pmu.Unlock()
				}
			}
			return true
		})
	}()
	go func() { // mosquitto → hallguard
		defer wg.Done()
		defer end()
		faultPipe(up, c, func(typ, _ byte, body []byte) bool {
			if typ == 4 && len(body) >= 2 {
				pid := binary.BigEndian.Uint16(body)
				pmu.Lock()
				pi, ok := pending[pid]
				delete(pending, pid)
				pmu.Unlock()
				if ok && pi.kind != faultPubOther {
					tp.mu.Lock()
					a := tp.acks[pi.id]
					if a == nil {
						a = &faultWireAcks{}
						tp.acks[pi.id] = a
					}
					if pi.kind == faultPubAlert {
						a.alertGens = append(a.alertGens, gen)
					} else {
						a.incidentGens = append(a.incidentGens, gen)
					}
					tp.mu.Unlock()
				}
				if ok && pi.kind == faultPubAlert && !tp.col.has(pi.id) {
					tp.mu.Lock()
					tp.held++
					tp.mu.Unlock()
					if !tp.col.wait(pi.id, done) {
						// Acknowledged by mosquitto, never delivered: a
						// plain broker connection would have lost it.
						tp.mu.Lock()
						tp.withheld++
						tp.mu.Unlock()
						return false // this connection ends; hallguard sends it again
					}
				}
			}
			return true
		})
	}()
	wg.Wait()
}

// faultPipe copies MQTT packets from src to dst until either fails, showing
// each to see first; see returning false ends the copy before that packet
// is passed on.
func faultPipe(src io.Reader, dst io.Writer, see func(typ, flags byte, body []byte) bool) {
	r := bufio.NewReaderSize(src, 64<<10)
	for {
		raw, typ, flags, body, err := faultReadPacket(r)
		if err != nil || !see(typ, flags, body) {
			return
		}
		if _, err := dst.Write(raw); err != nil {
			return
		}
	}
}

func (tp *faultTap) wireAcks(id string) faultWireAcks {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if a := tp.acks[id]; a != nil {
		return faultWireAcks{slices.Clone(a.alertGens), slices.Clone(a.incidentGens)}
	}
	return faultWireAcks{}
}

// faultReadPacket reads one MQTT control packet: its raw bytes, type, flags and
// body (variable header and payload).
func faultReadPacket(r *bufio.Reader) (raw []byte, typ, flags byte, body []byte, err error) {
	b0, err := r.ReadByte()
	if err != nil {
		return nil, 0, 0, nil, err
	}
	hdr := []byte{b0}
	n, mult := 0, 1
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return nil, 0, 0, nil, err
		}
		hdr = append(hdr, b)
		n += int(b&127) * mult
		mult *= 128
		if b&128 == 0 {
			break
		}
		if i == 3 {
			return nil, 0, 0, nil, errors.New("mqtt: remaining length over 4 bytes")
		}
	}
	raw = make([]byte, len(hdr)+n)
	copy(raw, hdr)
	if _, err := io.ReadFull(r, raw[len(hdr):]); err != nil {
		return nil, 0, 0, nil, err
	}
	return raw, b0 >> 4, b0 & 15, raw[len(hdr):], nil
}

// faultParsePublish reads a QoS 1/2 PUBLISH body: packet id and which report.
func faultParsePublish(body []byte) (uint16, faultPubInfo, bool) {
	if len(body) < 2 {
		return 0, faultPubInfo{}, false
	}
	tl := int(binary.BigEndian.Uint16(body))
	if len(body) < 2+tl+2 {
		return 0, faultPubInfo{}, false
	}
	topic := string(body[2 : 2+tl])
	pid := binary.BigEndian.Uint16(body[2+tl:])
	payload := body[2+tl+2:]
	pi := faultPubInfo{}
	switch {
	case strings.HasPrefix(topic, faultRoot+"/alerts/"), strings.HasPrefix(topic, faultRoot+"/drills/alerts/"):
		pi.kind = faultPubAlert
	case strings.HasPrefix(topic, faultRoot+"/incidents/"):
		pi.kind = faultPubIncident
	}
	if pi.kind != faultPubOther {
		var r struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(payload, &r) != nil || r.ID == "" {
			pi.kind = faultPubOther
		}
		pi.id = r.ID
	}
	return pid, pi, true
}

// ---------------------------------------------------------------------------
// analysis

// faultDelivery compares the journal's reports with what the center got.
type faultDelivery struct {
	sent, received, copies, duplicates int
	lost, phantom                      []string
	redeliveredCopies                  int
	redeliveredIDs                     int
	problems                           []string
}

func (r faultDelivery) String() string {
	return fmt.Sprintf("sent %d, received %d (%d copies), duplicates %d, lost %d, redelivered %d copies (%d reports)",
		r.sent, r.received, r.copies, r.duplicates, len(r.lost), r.redeliveredCopies, r.redeliveredIDs)
}

// faultAnalyse checks delivery: every journal report received (lost), nothing
// received that the journal does not hold (phantom: a report sent before
// it was durable), duplicates identical but for redelivered/sent_at and
// marked redelivered (unless the broker's own DUP resend), the first copies
// of each incident's versions in increasing order, and the journal's
// versions of each incident without gaps.
func faultAnalyse(sent []faultJournalReport, got []faultArrival) faultDelivery {
	res := faultDelivery{copies: len(got)}
	problem := func(f string, a ...any) {
		if len(res.problems) < 30 {
			res.problems = append(res.problems, fmt.Sprintf(f, a...))
		}
	}
	inJournal := map[string]faultJournalReport{}
	versions := map[string][]int{}
	for _, s := range sent {
		if prev, dup := inJournal[s.ID]; dup && !s.Salvaged {
			problem("journal holds report %s twice (records %d and %d)", s.ID, prev.Seq, s.Seq)
		}
		if _, dup := inJournal[s.ID]; !dup {
			versions[s.Incident] = append(versions[s.Incident], s.Version)
		}
		inJournal[s.ID] = s
	}
	res.sent = len(inJournal)
	for inc, vs := range versions {
		sort.Ints(vs)
		for i, v := range vs {
			if v != i+1 {
				problem("journal: incident %s has versions %v: a gap", inc, vs)
				break
			}
		}
	}
	first := map[string]faultArrival{}
	lastVersion := map[string]int{}
	redelivered := map[string]bool{}
	for _, a := range got {
		if a.Redelivered {
			res.redeliveredCopies++
			redelivered[a.ID] = true
		}
		f, seen := first[a.ID]
		if !seen {
			first[a.ID] = a
			if _, ok := inJournal[a.ID]; !ok {
				res.phantom = append(res.phantom, a.ID)
			}
			if a.Version <= lastVersion[a.Incident] {
				problem("incident %s: first copy of v%d arrived after v%d", a.Incident, a.Version, lastVersion[a.Incident])
			}
			lastVersion[a.Incident] = max(lastVersion[a.Incident], a.Version)
			if want := fmt.Sprintf("%s.v%d", a.Incident, a.Version); a.ID != want {
				problem("report id %s, want %s", a.ID, want)
			}
			continue
		}
		res.duplicates++
		if f.Incident != a.Incident || f.Version != a.Version || f.Event != a.Event || f.State != a.State {
			problem("duplicate of %s differs: %+v vs %+v", a.ID, f, a)
		}
		if !a.Redelivered && !a.Dup {
			problem("copy of %s received again without redelivered: true (sent_at %s, first %s)", a.ID, a.SentAt, f.SentAt)
		}
	}
	res.received = len(first)
	res.redeliveredIDs = len(redelivered)
	for id := range inJournal {
		if _, ok := first[id]; !ok {
			res.lost = append(res.lost, id)
		}
	}
	sort.Strings(res.lost)
	return res
}

// faultCheckMQTT analyses what the center got (got, and the undecodable
// payloads bad) against the journal's reports and fails t for every
// problem, undecodable payload, lost report and report the journal does
// not hold; prefix names the path in the messages.
func faultCheckMQTT(t *testing.T, prefix string, sent []faultJournalReport, got []faultArrival, bad []string) faultDelivery {
	t.Helper()
	res := faultAnalyse(sent, got)
	for _, p := range res.problems {
		t.Error(prefix + p)
	}
	if len(bad) > 0 {
		t.Errorf("%s%d undecodable payloads on alerts/, e.g. %s", prefix, len(bad), bad[0])
	}
	if len(res.lost) > 0 {
		t.Errorf("%sLOST %d reports, e.g. %v", prefix, len(res.lost), res.lost[:min(5, len(res.lost))])
	}
	if len(res.phantom) > 0 {
		t.Errorf("%s%d reports received that the journal does not hold (sent before durable?), e.g. %v",
			prefix, len(res.phantom), res.phantom[:min(5, len(res.phantom))])
	}
	return res
}

// faultDrain waits, the load halted, until hallguard is connected, its
// outbox is empty and the center holds every report of its journal.
func faultDrain(t *testing.T, h *faultHall, col *faultCollector) {
	t.Helper()
	waitFor(t, time.Minute, func() bool { _, c, _ := h.healthz(); return c }, "hallguard to connect", nil)
	h.waitOutboxEmpty(3 * time.Minute)
	if missing := col.waitAll(faultIDs(h.apiReports()), time.Minute); len(missing) > 0 {
		t.Errorf("%d reports of the journal never reached the center, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
}

func faultIDs(rs []faultJournalReport) []string {
	ids := make([]string, 0, len(rs))
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

func faultAtoi(s string) int { n, _ := strconv.Atoi(s); return n }
