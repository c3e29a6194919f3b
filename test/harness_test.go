package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hallguard/hallguard/test/hallproc"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// repoRoot is the module root, one folder up from test/.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// hallguardBin builds the binary once per test run.
func hallguardBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hallguard-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "hallguard")
		cmd := exec.Command("go", "build", "-o", binPath, "./daemon/cmd/hallguard")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t *testing.T) string {
	t.Helper()
	return freePorts(t, 1)[0]
}

// freePorts is hallproc.FreePorts, failing the test on an error.
func freePorts(t *testing.T, n int, avoid ...string) []string {
	t.Helper()
	got, err := hallproc.FreePorts(n, avoid...)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// flagValue is the value of flag in args ("" when absent).
func flagValue(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// daemonProc is a running hallguard.
type daemonProc struct {
	t        *testing.T
	p        *hallproc.Proc
	stateDir string
	http     string
	// local is the local listener's address: the console, /api/* and
	// /-/reload (-local-listen).
	local  string
	mqtt   string
	config string
	logs   *hallproc.Log
}

// startDaemon runs `hallguard run` on config (relative to the repo root) with
// free loopback ports and a private state dir, and waits until it is ready.
func startDaemon(t *testing.T, config string, extra ...string) *daemonProc {
	t.Helper()
	return startDaemonOn(t, config, t.TempDir(), extra...)
}

// startDaemonOn is startDaemon on a given state directory (a restart).
func startDaemonOn(t *testing.T, config, stateDir string, extra ...string) *daemonProc {
	t.Helper()
	mqtt := freePort(t)
	d := launchDaemon(t, config, stateDir, append([]string{"-mqtt-listen", mqtt}, extra...)...)
	d.mqtt = mqtt
	err := hallproc.WaitHealth(http.DefaultClient, d.http, d.p.Exited, 20*time.Second, 50*time.Millisecond, hallproc.Ready)
	switch {
	case errors.Is(err, hallproc.ErrExited):
		t.Fatalf("hallguard exited before ready: %v\n%s", d.p.Err(), d.logs)
	case err != nil:
		t.Fatalf("hallguard not ready after 20s:\n%s", d.logs)
	}
	return d
}

// launchDaemon runs `hallguard run` on config (relative to the repo root)
// and stateDir, with free loopback ports for the operations and local
// listeners and extra flags after them, and stops it at cleanup. It does
// not wait for the daemon to be ready.
func launchDaemon(t *testing.T, config, stateDir string, extra ...string) *daemonProc {
	t.Helper()
	ports := freePorts(t, 2, flagValue(extra, "-mqtt-listen"))
	d := &daemonProc{t: t, stateDir: stateDir, http: ports[0], local: ports[1],
		config: config, logs: &hallproc.Log{}}
	if !filepath.IsAbs(config) {
		d.config = filepath.Join(repoRoot(t), config)
	}
	args := append([]string{"run", "-config", d.config, "-state-dir", d.stateDir,
		"-http-listen", d.http, "-local-listen", d.local}, extra...)
	cmd := exec.Command(hallguardBin(t), args...)
	cmd.Stdout, cmd.Stderr = d.logs, d.logs
	p, err := hallproc.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	d.p = p
	t.Cleanup(func() { d.stop() })
	return d
}

// stop sends SIGINT to the daemon's PID and waits for it.
func (d *daemonProc) stop() {
	if d.p.Exited() {
		return
	}
	if !d.p.End(os.Interrupt, 10*time.Second) {
		d.t.Errorf("hallguard did not stop on SIGINT within 10s")
	}
}

// child is an external process a test starts, SIGKILLs and starts again
// (mosquitto, `hallguard arc listen`): the run in progress, signalled only
// by its PID.
type child struct {
	mu sync.Mutex
	p  *hallproc.Proc
}

// start starts cmd as the run in progress and returns a channel closed
// once it has exited.
func (c *child) start(t *testing.T, cmd *exec.Cmd) <-chan struct{} {
	t.Helper()
	p, err := hallproc.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.p = p
	c.mu.Unlock()
	return p.Done()
}

// kill SIGKILLs the run in progress and waits for it.
func (c *child) kill() { c.end(syscall.SIGKILL) }

// stop sends SIGTERM to the run in progress and waits for it (SIGKILL
// after 10s).
func (c *child) stop() { c.end(syscall.SIGTERM) }

func (c *child) end(sig syscall.Signal) {
	c.mu.Lock()
	p := c.p
	c.p = nil
	c.mu.Unlock()
	if p != nil {
		p.End(sig, 10*time.Second)
	}
}

// waitUp waits up to 30s until up holds for a process just started,
// failing with its logs at once if it exits (done) first.
func waitUp(t *testing.T, done <-chan struct{}, what string, logs *hallproc.Log, up func() bool) {
	t.Helper()
	waitFor(t, 30*time.Second, func() bool {
		select {
		case <-done:
			t.Fatalf("%s exited at start:\n%s", what, logs)
		default:
		}
		return up()
	}, what+" to start", logs)
}

// hg runs a hallguard subcommand against this daemon and returns stdout.
func (d *daemonProc) hg(args ...string) (string, error) {
	cmd := exec.Command(hallguardBin(d.t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("hallguard %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func (d *daemonProc) sim(args ...string) {
	d.t.Helper()
	a := append([]string{"sim", "-socket", filepath.Join(d.stateDir, "sim.sock")}, args...)
	if _, err := d.hg(a...); err != nil {
		d.t.Fatal(err)
	}
}

func (d *daemonProc) metrics() string {
	d.t.Helper()
	resp, err := http.Get("http://" + d.http + "/metrics")
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// subscriber is a real MQTT client collecting messages.
type subscriber struct {
	c paho.Client
	*hallproc.Inbox
}

type message = hallproc.Message

func subscribe(t *testing.T, broker, filter string) *subscriber {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker("tcp://" + broker).SetClientID(fmt.Sprintf("e2e-%d", time.Now().UnixNano())).
		SetAutoReconnect(true).SetCleanSession(true)
	s := &subscriber{c: paho.NewClient(opts)}
	if tok := s.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt connect: %v", tok.Error())
	}
	in, err := hallproc.Subscribe(s.c, filter, 10*time.Second)
	if err != nil {
		t.Fatalf("mqtt %v", err)
	}
	s.Inbox = in
	t.Cleanup(func() { s.c.Disconnect(100) })
	return s
}

// wait returns the first message matching ok, waiting up to d.
func (s *subscriber) wait(t *testing.T, d time.Duration, ok func(message) bool) message {
	t.Helper()
	m, found := s.Wait(0, d, nil, ok)
	if !found {
		topics := []string{}
		for _, m := range s.All() {
			topics = append(topics, m.Topic)
		}
		t.Fatalf("no matching MQTT message within %s; got topics %v", d, topics)
	}
	return m
}

func (s *subscriber) all() []message { return s.All() }

// reportOn returns the first message on topic, waiting up to d, as a
// report (left zero where its payload is not one).
func (s *subscriber) reportOn(t *testing.T, d time.Duration, topic string) report {
	t.Helper()
	m := s.wait(t, d, func(m message) bool { return m.Topic == topic })
	var r report
	_ = json.Unmarshal(m.Payload, &r)
	return r
}

// demoConfigCopy writes configs/demo.yaml, changed by edit, into a temp dir,
// with its relative paths made absolute, and returns the file's path.
func demoConfigCopy(t *testing.T, edit func(string) string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "configs", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "playbooks_dir: playbooks", "playbooks_dir: "+filepath.Join(repoRoot(t), "configs", "playbooks"), 1)
	s = strings.Replace(s, "key_file: demo-command.key", "key_file: "+filepath.Join(repoRoot(t), "configs", "demo-command.key"), 1)
	if edit != nil {
		s = edit(s)
	}
	path := filepath.Join(t.TempDir(), "hallguard.yaml")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
