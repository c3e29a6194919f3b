//go:build fault || security

package test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/test/hallproc"
)

// mosquitto is Debian's mosquitto on a copy of a config from
// configs/mosquitto/, each listener moved to a free loopback port that
// stays the same across restarts. It is stopped by its PID.
type mosquitto struct {
	t      *testing.T
	bin    string
	conf   string
	addrs  []string // the listeners, in the config's order
	logs   *hallproc.Log
	starts int
	proc   child
}

// mosquittoDir is a temporary directory the mosquitto user can read
// (mosquitto drops root for its own user).
func mosquittoDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startMosquitto writes configs/mosquitto/<name>, which must have
// listeners listener lines, into dir (from mosquittoDir) with every
// listener on a free loopback port and every other line passed through
// edit (when not nil), starts mosquitto on it and stops it at cleanup.
func startMosquitto(t *testing.T, dir, name string, listeners int, edit func(line string) string) *mosquitto {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr != nil {
			t.Fatalf("mosquitto not found (%v): apt-get install -y --no-install-recommends mosquitto mosquitto-clients", err)
		}
		bin = "/usr/sbin/mosquitto"
	}
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "configs", "mosquitto", name))
	if err != nil {
		t.Fatal(err)
	}
	m := &mosquitto{t: t, bin: bin, conf: filepath.Join(dir, "mosquitto.conf"), logs: &hallproc.Log{}}
	lines := strings.Split(string(src), "\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "listener "):
			addr := freePort(t)
			_, port, _ := net.SplitHostPort(addr)
			m.addrs = append(m.addrs, addr)
			lines[i] = "listener " + port + " 127.0.0.1"
		case edit != nil:
			lines[i] = edit(l)
		}
	}
	if len(m.addrs) != listeners {
		t.Fatalf("configs/mosquitto/%s: %d listener lines, want %d", name, len(m.addrs), listeners)
	}
	if err := os.WriteFile(m.conf, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	m.start()
	t.Cleanup(m.stop)
	return m
}

// addr is the first listener's address.
func (m *mosquitto) addr() string { return m.addrs[0] }

// start starts mosquitto (again) and waits until every listener accepts
// connections.
func (m *mosquitto) start() {
	m.t.Helper()
	m.starts++
	fmt.Fprintf(m.logs, "--- start %d\n", m.starts)
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout, cmd.Stderr = m.logs, m.logs
	done := m.proc.start(m.t, cmd)
	for _, addr := range m.addrs {
		waitUp(m.t, done, "mosquitto on "+addr, m.logs, func() bool {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}
}

// kill SIGKILLs mosquitto by its PID and waits for it.
func (m *mosquitto) kill() { m.proc.kill() }

// stop sends SIGTERM to mosquitto's PID (SIGKILL after 10s).
func (m *mosquitto) stop() { m.proc.stop() }
