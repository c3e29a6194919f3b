package daemon_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/devices"
)

// module marks a stack frame of this module's code.
const module = "github.com/hallguard/hallguard/"

// goroutines returns the stacks of the live goroutines by their header
// line ("goroutine 12 [running]:" without the state, so a goroutine that
// only changed state is still the same one).
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		head, _, _ := strings.Cut(string(g), " [")
		out[head] = string(g)
	}
	return out
}

// leaked returns the goroutines not in before that run, or were started
// by, this module's code other than tests.
func leaked(before map[string]string) []string {
	var out []string
	for head, stack := range goroutines() {
		if _, ok := before[head]; ok {
			continue
		}
		for _, line := range strings.Split(stack, "\n") {
			line = strings.TrimPrefix(strings.TrimSpace(line), "created by ")
			if strings.HasPrefix(line, module) && !strings.Contains(line, "_test.") {
				out = append(out, stack)
				break
			}
		}
	}
	return out
}

// Every goroutine Run starts (inputs, actuator, loops, HTTP, the sim
// socket, MQTT, the ARC path, fire-and-forget notes) is gone once Run
// has returned.
func TestRunLeavesNoGoroutines(t *testing.T) {
	before := goroutines()
	dir := t.TempDir()
	r := startHall(t, inDir(dir))
	r.sim.Input("panic-1").Press()
	r.eventually("police link", func() bool { return r.sim.Output("police-link").Level() == devices.High })
	// A control client that stays connected across the stop.
	conn, err := net.Dial("unix", filepath.Join(dir, "sim.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintln(conn, "list"); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	r.stop()
	// A liveness bound, not a timing assertion: shorter than the control
	// socket's own deadline on an idle client.
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := leaked(before)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines outlived Run:\n\n%s", len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
