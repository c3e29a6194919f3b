package daemon_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hallguard/hallguard/daemon"
	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/sim"
)

const hallYAML = `
hall: {id: t-hall, name: Test hall, location: 1 Test Road}
backend: sim
inputs:
  - {id: panic-1, kind: panic, variant: armed, line: 1}
  - {id: call-1, kind: callpoint, line: 2}
  - {id: door-1, kind: generic, line: 3, stuck_after: 2s}
outputs:
  - {id: siren, line: 10, fail_safe: inactive, audible: true}
  - {id: strobe, line: 11, fail_safe: inactive}
  - {id: door-release, line: 12, fail_safe: active}
  - {id: police-link, line: 13, fail_safe: inactive, silent_ok: true}
roles: [{id: supervisor}, {id: center_manager}, {id: general_manager}]
mqtt: {broker: embedded, listen: "127.0.0.1:0"}
http: {listen: "127.0.0.1:0", local_listen: "127.0.0.1:0"}
commands: {auth: none}
`

type running struct {
	t      *testing.T
	d      *daemon.Daemon
	sim    *sim.Backend
	cancel context.CancelFunc
	done   chan error
	file   string // the config file (fromFile), else ""
}

// hall is how startHall runs a test hall; hallOptions change it.
type hall struct {
	yaml     string // the config without state_dir: hallYAML unless withYAML
	extra    string // appended to yaml; its own mqtt: or http: section replaces yaml's
	stateDir string // "": a fresh folder
	dir      string // "": the config is parsed in place; else written to dir/hallguard.yaml and loaded from there
	opts     daemon.Options
}

type hallOption func(*hall)

// inDir runs the hall on stateDir as its state directory (a restart).
func inDir(stateDir string) hallOption { return func(h *hall) { h.stateDir = stateDir } }

// withYAML runs the config yaml instead of the test hall's.
func withYAML(yaml string) hallOption { return func(h *hall) { h.yaml = yaml } }

// withExtra appends YAML to the config; an mqtt: or http: section in it
// replaces the test hall's.
func withExtra(extra string) hallOption { return func(h *hall) { h.extra = extra } }

// withBackend opens the "sim" backend with factory.
func withBackend(factory daemon.BackendFactory) hallOption {
	return func(h *hall) { h.opts.Backends = map[string]daemon.BackendFactory{"sim": factory} }
}

// withOptions passes opts to Run (Logger and Ready are set by startHall).
func withOptions(opts daemon.Options) hallOption { return func(h *hall) { h.opts = opts } }

// fromFile writes the config to dir/hallguard.yaml (so that Reload reads
// it again and its relative files are taken from dir), with the state
// directory dir/state unless inDir says otherwise.
func fromFile(dir string) hallOption { return func(h *hall) { h.dir = dir } }

// configsDir is the repository's configs folder, where a config parsed in
// place lives (its playbooks beside it).
func configsDir(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "configs"))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// hallConfig parses the test hall's yaml with stateDir as if it were in
// the configs folder.
func hallConfig(t *testing.T, yaml, stateDir string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(filepath.Join(configsDir(t), "daemon-test.yaml"), []byte(yaml+"state_dir: "+stateDir+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	noFixedPorts(t, cfg)
	return cfg
}

// noFixedPorts fails a test whose config listens on a fixed port (a
// default such as http.local_listen 127.0.0.1:9465 left in): two test runs
// on one machine (CI run 13, beside run 12) then fail with "address
// already in use". Every listener in a test takes a free port (:0).
func noFixedPorts(t *testing.T, cfg *config.Config) {
	t.Helper()
	for field, addr := range map[string]string{"http.listen": cfg.HTTP.Listen, "http.local_listen": cfg.HTTP.LocalListen, "mqtt.listen": cfg.MQTT.Listen} {
		if _, port, err := net.SplitHostPort(addr); err == nil && port != "0" {
			t.Fatalf("test config: %s %s is a fixed port; give it 127.0.0.1:0", field, addr)
		}
	}
}

// readyWithin bounds a start: a liveness bound, not a timing assertion.
// A restart replaying 60,000 journal records under -race took 11-27 s on
// a two-core machine loaded to 10 (TestRestartRestoresRobberyBehindChatter
// failed "not ready after 15s" so, three times beside other test runs).
const readyWithin = 60 * time.Second

// startHall runs the test hall (hallYAML, backend sim, a fresh state
// directory) as the options say, returns it ready and stops it at the
// test's end. r.file is the config file with fromFile.
func startHall(t *testing.T, options ...hallOption) *running {
	t.Helper()
	h := hall{yaml: hallYAML}
	for _, o := range options {
		o(&h)
	}
	for _, key := range []string{"http:", "mqtt:"} {
		if strings.HasPrefix(h.extra, key) || strings.Contains(h.extra, "\n"+key) {
			lines := strings.Split(h.yaml, "\n")
			for i, l := range lines {
				if strings.HasPrefix(l, key) {
					lines = append(lines[:i], lines[i+1:]...)
					break
				}
			}
			h.yaml = strings.Join(lines, "\n")
		}
	}
	var cfg *config.Config
	file := ""
	if h.dir == "" {
		if h.stateDir == "" {
			h.stateDir = t.TempDir()
		}
		cfg = hallConfig(t, h.yaml+h.extra, h.stateDir)
	} else {
		if h.stateDir == "" {
			h.stateDir = filepath.Join(h.dir, "state")
		}
		file = filepath.Join(h.dir, "hallguard.yaml")
		body := h.yaml + "state_dir: " + h.stateDir + "\nplaybooks_dir: " + filepath.Join(configsDir(t), "playbooks") + "\n" + h.extra
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		var err error
		if cfg, err = config.Load(file); err != nil {
			t.Fatal(err)
		}
		noFixedPorts(t, cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{t: t, cancel: cancel, done: make(chan error, 1), file: file}
	ready := make(chan *daemon.Daemon, 1)
	opts := h.opts
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.Ready = func(d *daemon.Daemon) { ready <- d }
	go func() { r.done <- daemon.Run(ctx, cfg, opts) }()
	select {
	case r.d = <-ready:
	case err := <-r.done:
		t.Fatalf("Run ended before ready: %v", err)
	case <-time.After(readyWithin):
		t.Fatalf("not ready after %s", readyWithin)
	}
	switch b := r.d.Backend().(type) {
	case *sim.Backend:
		r.sim = b
	case *lossyBackend:
		r.sim = b.Backend
	case *chipBackend:
		r.sim = b.Backend
	}
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *running) stop() {
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second): // a liveness bound: shutdown flushes for up to 5 s, more on a busy machine
		r.t.Errorf("Run did not stop")
	}
	r.cancel = func() {}
	r.done = make(chan error, 1)
	r.done <- nil
}

// conditionWatch is a center on the hall's retained conditions topic.
type conditionWatch struct {
	t   *testing.T
	got chan string
}

// conditions subscribes to the hall's conditions topic as the center does,
// until the test ends.
func (r *running) conditions() *conditionWatch {
	r.t.Helper()
	w := &conditionWatch{t: r.t, got: make(chan string, 64)}
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + r.d.BrokerAddr()).SetClientID("center-test"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		r.t.Fatalf("connect: %v", tok.Error())
	}
	r.t.Cleanup(func() { c.Disconnect(50) })
	c.Subscribe("hallguard/t-hall/conditions", 1, func(_ paho.Client, m paho.Message) { w.got <- string(m.Payload()) })
	return w
}

// wait takes conditions until ok accepts one; none within is fatal (a
// liveness bound, not a timing assertion).
func (w *conditionWatch) wait(what string, ok func(string) bool, within time.Duration) {
	w.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case p := <-w.got:
			if ok(p) {
				return
			}
		case <-deadline:
			w.t.Fatalf("%s: not seen on the retained conditions topic", what)
		}
	}
}

func (r *running) eventually(what string, ok func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a liveness bound, not a timing assertion

	for !ok() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *running) metrics() string { return r.get("http://" + r.d.HTTPAddr() + "/metrics") }

// get returns the body of a GET of url; a failed request is fatal.
func (r *running) get(url string) string {
	r.t.Helper()
	b, err := getBody(url)
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

// getBody returns the body of a GET of url.
func getBody(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), nil
}

func TestOutputsFailSafeAtStartAndStop(t *testing.T) {
	r := startHall(t)
	for _, id := range []string{"siren", "strobe", "door-release", "police-link"} {
		o := r.sim.Output(id)
		if h := o.History(); len(h) == 0 {
			t.Fatalf("%s never opened", id)
		}
	}
	// Opened at fail-safe: the door release (fail_safe: active) started High.
	if h := r.sim.Output("door-release").History(); h[0] != devices.High {
		t.Errorf("door-release opened at %v, want its fail-safe level high", h[0])
	}
	// Running and idle: every output at rest (inactive).
	r.eventually("outputs at rest", func() bool { return r.sim.Output("door-release").Level() == devices.Low })
	if r.sim.Output("siren").Level() != devices.Low {
		t.Errorf("siren not at rest")
	}
	r.stop()
	if got := r.sim.Output("door-release").Level(); got != devices.High {
		t.Errorf("door-release at stop = %v, want fail-safe high", got)
	}
	if got := r.sim.Output("siren").Level(); got != devices.Low {
		t.Errorf("siren at stop = %v, want fail-safe low", got)
	}
}

func TestSirenSilentInRobberySoundsInFire(t *testing.T) {
	r := startHall(t)
	r.sim.Input("panic-1").Press()
	r.eventually("police link", func() bool { return r.sim.Output("police-link").Level() == devices.High })
	time.Sleep(100 * time.Millisecond)
	for _, id := range []string{"siren", "strobe"} {
		for _, l := range r.sim.Output(id).History() {
			if l == devices.High {
				t.Fatalf("%s acted during a robbery (history %v)", id, r.sim.Output(id).History())
			}
		}
	}
	r.sim.Input("call-1").Press()
	r.eventually("siren on fire", func() bool { return r.sim.Output("siren").Level() == devices.High })
	r.eventually("strobe on fire", func() bool { return r.sim.Output("strobe").Level() == devices.High })
}

func TestStuckInputAndLostLine(t *testing.T) {
	r := startHall(t)
	r.sim.Input("door-1").Press()
	r.eventually("stuck trouble", func() bool {
		return strings.Contains(r.metrics(), `hallguard_input_fault{fault="stuck",input="door-1"} 1`)
	})
	r.sim.Input("door-1").Release()
	r.eventually("stuck cleared", func() bool {
		return strings.Contains(r.metrics(), `hallguard_input_fault{fault="stuck",input="door-1"} 0`)
	})
	// The line goes away (chip removed): trouble, then the daemon reopens it.
	r.sim.Input("panic-1").Lose()
	r.eventually("line_lost trouble", func() bool {
		return strings.Contains(r.metrics(), `hallguard_input_fault{fault="line_lost",input="panic-1"} 1`)
	})
	r.eventually("line reopened", func() bool {
		return strings.Contains(r.metrics(), `hallguard_input_fault{fault="line_lost",input="panic-1"} 0`)
	})
	r.sim.Input("panic-1").Press()
	r.eventually("a press after the line came back raises robbery", func() bool {
		return strings.Contains(r.metrics(), `hallguard_incidents_total{drill="false",origin="button",playbook="robbery"} 1`)
	})
}

// A journal found damaged at start is moved aside, and the trouble reaches
// the center (the retained conditions topic) and the fresh journal, though
// it was found before MQTT was up.
func TestDamagedJournalAtStartReachesTheCenter(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hallguard.db"), []byte("not a bbolt file, damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startHall(t, inDir(dir))
	r.conditions().wait("journal_recovered raised", func(p string) bool {
		return strings.Contains(p, `"kind":"journal_recovered"`) && strings.Contains(p, `"active":true`)
	}, 5*time.Second)
	r.eventually("a trouble record in the fresh journal", func() bool {
		b, err := getBody("http://" + r.d.LocalAddr() + "/api/journal/export?kind=trouble")
		return err == nil && strings.Contains(b, "journal_recovered")
	})
}

// TestSimSocketExistsWhenReady: READY=1 (and Options.Ready) promises that
// every control surface is up. The sim control socket used to be created by
// a goroutine started just before READY, so a client that dialled it right
// after READY could find no socket: make bench's drain phase failed that way
// on a busy machine ("sim.sock: connect: no such file or directory") and
// stopped the daemon 2 ms after it became ready.
func TestSimSocketExistsWhenReady(t *testing.T) {
	for i := 0; i < 20; i++ {
		cfg := hallConfig(t, hallYAML, t.TempDir())
		ctx, cancel := context.WithCancel(context.Background())
		found := make(chan error, 1)
		done := make(chan error, 1)
		go func() {
			done <- daemon.Run(ctx, cfg, daemon.Options{Logger: slog.New(slog.DiscardHandler), Ready: func(*daemon.Daemon) {
				fi, err := os.Stat(daemon.SimSocket(cfg))
				if err == nil && fi.Mode().Perm() != 0o600 {
					err = fmt.Errorf("mode %v, want 0600", fi.Mode().Perm())
				}
				found <- err
			}})
		}()
		select {
		case err := <-found:
			if err != nil {
				t.Fatalf("round %d: sim socket at READY: %v", i, err)
			}
		case err := <-done:
			t.Fatalf("Run ended before ready: %v", err)
		case <-time.After(15 * time.Second):
			t.Fatal("not ready after 15s")
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
