package test

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hallguard/hallguard/mqtt/broker"
)

// arcListenProc is `hallguard arc listen` as a real process.
type arcListenProc struct {
	cmd   *exec.Cmd
	addr  string
	mu    sync.Mutex
	lines []string
}

func startARCListen(t *testing.T, keyFile string) *arcListenProc {
	t.Helper()
	a := &arcListenProc{cmd: exec.Command(hallguardBin(t), "arc", "listen", "-listen", "127.0.0.1:0", "-key-file", keyFile)}
	stdout, _ := a.cmd.StdoutPipe()
	stderr, _ := a.cmd.StderrPipe()
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = a.cmd.Process.Signal(syscall.SIGTERM) // by its PID
		_ = a.cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`listening on tcp (\S+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			a.mu.Lock()
			a.lines = append(a.lines, sc.Text())
			a.mu.Unlock()
		}
	}()
	select {
	case a.addr = <-addr:
	case <-time.After(20 * time.Second):
		t.Fatal("arc listen did not start")
	}
	return a
}

func (a *arcListenProc) saw(s string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, l := range a.lines {
		if strings.Contains(l, s) && strings.Contains(l, "-> ACK") {
			return true
		}
	}
	return false
}

// TestDualPathWholeBinary: the real binary with MQTT and DC-09 at once
// and the broker down from the start. A panic press reaches `arc listen`
// over DC-09 (encrypted) as a silent hold-up, the ARC is told that the
// MQTT path failed, and once the broker is up MQTT catches up: the
// robbery report is delivered there too. Prints the press → ARC time.
func TestDualPathWholeBinary(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "arc-key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("5e", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	arcRx := startARCListen(t, keyFile)
	brokerAddr := freePort(t) // nothing listens there yet
	cfg := demoConfigCopy(t, func(s string) string {
		s = strings.Replace(s, "  broker: embedded\n  listen: 127.0.0.1:1883\n", "  broker: tcp://"+brokerAddr+"\n  max_reconnect: 1s\n", 1)
		return s + "arc:\n  account: \"4F39\"\n  key_file: " + keyFile + "\n  category: SP6\n  receivers:\n    - {name: primary, address: \"" + arcRx.addr + "\", poll_interval: 1s, fail_after: 2s}\n"
	})
	d := &daemonProc{t: t, stateDir: t.TempDir(), http: freePort(t), local: freePort(t), config: cfg, logs: &syncBuffer{}, done: make(chan error, 1)}
	d.cmd = exec.Command(hallguardBin(t), "run", "-config", cfg, "-state-dir", d.stateDir, "-http-listen", d.http, "-local-listen", d.local)
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(d.stop)
	health := func() (ready bool, pending float64) {
		resp, err := http.Get("http://" + d.http + "/healthz")
		if err != nil {
			return false, -1
		}
		defer resp.Body.Close()
		var h struct {
			Ready   bool    `json:"ready"`
			Pending float64 `json:"reports_pending"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&h)
		return h.Ready, h.Pending
	}
	waitFor(t, 20*time.Second, func() bool { r, _ := health(); return r }, "hallguard ready with the broker down", d.logs)

	pressed := time.Now()
	d.sim("press", "panic-teller-1")
	waitFor(t, 10*time.Second, func() bool { return arcRx.saw("CID new 122 silent hold-up area 01 zone 001") }, "the robbery at the ARC over DC-09", d.logs)
	t.Logf("broker down: panic press (hallguard sim) -> ACK line printed by arc listen: %v", time.Since(pressed))
	if !arcRx.saw("ADM-CID (AES)") {
		t.Error("the ARC did not get the robbery encrypted")
	}
	if _, p := health(); p < 1 {
		t.Errorf("reports pending on MQTT %v while the broker is down, want the robbery's", p)
	}
	waitFor(t, 15*time.Second, func() bool { return arcRx.saw("CID new 350 communication trouble") }, "the MQTT path failure at the ARC", d.logs)

	b, err := broker.Start(brokerAddr, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sub := subscribe(t, brokerAddr, "hallguard/demo-hall/incidents/#")
	sub.wait(t, 20*time.Second, func(m message) bool { return strings.Contains(string(m.Payload), `"playbook":"robbery"`) })
	waitFor(t, 10*time.Second, func() bool { _, p := health(); return p == 0 }, "MQTT to catch up", d.logs)
	waitFor(t, 10*time.Second, func() bool { return arcRx.saw("CID restore 350 communication trouble") }, "the MQTT path restored at the ARC", d.logs)
}
