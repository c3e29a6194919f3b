package test

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/mqtt/broker"

	"github.com/hallguard/hallguard/test/hallproc"
)

// arcListen is `hallguard arc listen`, a real process, on one loopback
// port that stays the same when it is killed and started again. What each
// run printed is kept.
type arcListen struct {
	t       *testing.T
	keyFile string
	addr    string // "" until the first run has listened
	proc    child
	errs    hallproc.Log
	outs    []*hallproc.Log // stdout of each run, in order
}

// arcLine is a line `arc listen` printed, with the run (1, 2, ...) that
// printed it.
type arcLine struct {
	gen  int
	text string
}

var arcListening = regexp.MustCompile(`listening on tcp (\S+)`)

// startARCListen runs `arc listen` with keyFile on a free loopback port and
// stops it at cleanup.
func startARCListen(t *testing.T, keyFile string) *arcListen {
	t.Helper()
	a := &arcListen{t: t, keyFile: keyFile}
	a.start()
	t.Cleanup(a.proc.stop)
	return a
}

// start runs the receiver (again) and waits until it listens.
func (a *arcListen) start() {
	a.t.Helper()
	listen := a.addr
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	out := &hallproc.Log{}
	a.outs = append(a.outs, out)
	gen := len(a.outs)
	cmd := exec.Command(hallguardBin(a.t), "arc", "listen", "-listen", listen, "-key-file", a.keyFile)
	cmd.Stdout, cmd.Stderr = out, &a.errs
	done := a.proc.start(a.t, cmd)
	waitUp(a.t, done, "arc listen", &a.errs, func() bool {
		m := arcListening.FindAllStringSubmatch(a.errs.String(), -1)
		if len(m) < gen {
			return false
		}
		a.addr = m[gen-1][1]
		return true
	})
}

// kill SIGKILLs the receiver by its PID and waits until its output is read.
func (a *arcListen) kill() { a.proc.kill() }

// lines returns every line printed so far, run by run.
func (a *arcListen) lines() []arcLine {
	var ls []arcLine
	for i, out := range a.outs {
		for _, l := range strings.Split(out.String(), "\n") {
			if l != "" {
				ls = append(ls, arcLine{gen: i + 1, text: l})
			}
		}
	}
	return ls
}

// saw reports whether the receiver ACKed a message whose line holds s.
func (a *arcListen) saw(s string) bool {
	for _, l := range a.lines() {
		if strings.Contains(l.text, s) && strings.Contains(l.text, "-> ACK") {
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
	d := launchDaemon(t, cfg, t.TempDir()) // the broker is down: not connected
	health := func() (ready bool, pending int) {
		h, err := hallproc.GetHealth(http.DefaultClient, d.http)
		if err != nil {
			return false, -1
		}
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
