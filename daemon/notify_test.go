package daemon_test

import (
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/devices/sim"
)

// countingBackend records how many inputs are open.
type countingBackend struct {
	*sim.Backend
	opened atomic.Int32
}

func (b *countingBackend) OpenInput(s devices.InputSpec) (devices.Input, error) {
	in, err := b.Backend.OpenInput(s)
	if err == nil {
		b.opened.Add(1)
	}
	return in, err
}

type notice struct {
	msg    string
	at     time.Time
	inputs int32
}

func TestSystemdReadyAndWatchdog(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "200000") // 200 ms: fed every 100 ms

	backend := &countingBackend{}
	var mu sync.Mutex
	var notices []notice
	go func() {
		buf := make([]byte, 512)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			mu.Lock()
			notices = append(notices, notice{string(buf[:n]), time.Now(), backend.opened.Load()})
			mu.Unlock()
		}
	}()
	count := func(msg string, since time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, nt := range notices {
			if nt.msg == msg && nt.at.After(since) {
				n++
			}
		}
		return n
	}

	cfg := hallConfig(t, hallYAML, dir)
	r := startHall(t, inDir(dir), withBackend(func(_ *config.Config, clk clock.Clock) (devices.Backend, error) {
		backend.Backend = sim.New(clk)
		return backend, nil
	}))
	d := r.d

	// READY=1 once, and only after every input was open.
	deadline := time.Now().Add(5 * time.Second)
	for count("READY=1", time.Time{}) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	var readyAt *notice
	for i := range notices {
		if notices[i].msg == "READY=1" {
			readyAt = &notices[i]
			break
		}
	}
	mu.Unlock()
	if readyAt == nil {
		t.Fatal("no READY=1")
	}
	if want := int32(len(cfg.Inputs)); readyAt.inputs != want {
		t.Errorf("READY=1 came with %d of %d inputs open", readyAt.inputs, want)
	}

	// WATCHDOG=1 keeps arriving.
	start := time.Now()
	time.Sleep(time.Second)
	if n := count("WATCHDOG=1", start); n < 4 {
		t.Errorf("WATCHDOG=1 x%d in 1s at a 200ms watchdog, want it about every 100ms", n)
	}

	// A blocked engine stops it: systemd would restart the daemon.
	release := d.Engine().Hold()
	time.Sleep(300 * time.Millisecond) // a ping already under way may finish first
	blocked := time.Now()
	time.Sleep(time.Second)
	if n := count("WATCHDOG=1", blocked); n != 0 {
		t.Errorf("WATCHDOG=1 x%d while the engine was blocked, want none", n)
	}
	release()
	resumed := time.Now()
	time.Sleep(600 * time.Millisecond)
	if n := count("WATCHDOG=1", resumed); n == 0 {
		t.Errorf("WATCHDOG=1 did not resume after the engine was released")
	}
	r.stop()
	if count("STOPPING=1", time.Time{}) != 1 {
		t.Errorf("no STOPPING=1 on shutdown")
	}
}
