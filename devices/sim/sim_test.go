package sim_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/sim"
)

func TestControlSocket(t *testing.T) {
	b := sim.New(nil)
	in, err := b.OpenInput(devices.InputSpec{ID: "panic-1", Idle: devices.Low})
	if err != nil {
		t.Fatal(err)
	}
	nc, _ := b.OpenInput(devices.InputSpec{ID: "loop-1", Idle: devices.High})
	var events []devices.Event
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go in.Watch(ctx, func(ev devices.Event) { events = append(events, ev) })
	time.Sleep(10 * time.Millisecond)

	sock := filepath.Join(t.TempDir(), "sim.sock")
	l, err := sim.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket after Listen: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	go b.Serve(ctx, l)
	cases := []struct{ req, want, err string }{
		{"list", "ok inputs=loop-1,panic-1 outputs=", ""},
		{"press panic-1", "ok press panic-1", ""},
		{"press panic-1", "ok press panic-1", ""}, // same level: no edge
		{"release panic-1", "ok release panic-1", ""},
		{"pulse panic-1 5ms", "ok pulse panic-1", ""},
		{"press loop-1", "ok press loop-1", ""},
		{"press nope", "", `no input "nope"`},
		{"pulse panic-1 1h", "", "bad pulse width"},
		{"explode panic-1", "", "unknown request"},
		{"press", "", "needs an input id"},
	}
	for _, c := range cases {
		got, err := sim.Send(sock, c.req)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err = %v, want %q", c.req, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q = %q, %v; want %q", c.req, got, err, c.want)
		}
	}
	var levels []devices.Level
	for _, ev := range events {
		levels = append(levels, ev.Level)
	}
	if want := []devices.Level{devices.High, devices.Low, devices.High, devices.Low}; len(levels) != 4 || levels[0] != want[0] || levels[3] != want[3] {
		t.Errorf("panic-1 edges = %v, want %v", levels, want)
	}
	for i, ev := range events {
		if ev.Seq != uint64(i+1) {
			t.Errorf("event %d seq = %d", i, ev.Seq)
		}
	}
	// An NC input presses by going low.
	if l, _ := nc.Read(); l != devices.Low {
		t.Errorf("NC input after press = %v, want low", l)
	}
}

// TestEdgesBeforeWatchAreDelivered: an edge between OpenInput and Watch is
// queued and delivered when Watch starts, as the kernel queues a requested
// line's events. The daemon reads a line's level at open and watches it
// after READY's "inputs open"; a press in between used to be lost, and
// the engine kept the stale idle level (TestReopenedLineReportsIdleAndClearsStuck
// flaked on it in a CI rehearsal).
func TestEdgesBeforeWatchAreDelivered(t *testing.T) {
	b := sim.New(nil)
	in, err := b.OpenInput(devices.InputSpec{ID: "door", Idle: devices.Low})
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := in.Read(); l != devices.Low {
		t.Fatalf("level at open %v", l)
	}
	b.Input("door").Press() // before Watch
	got := make(chan devices.Event, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go in.Watch(ctx, func(ev devices.Event) { got <- ev })
	select {
	case ev := <-got:
		if ev.Level != devices.High || ev.Seq != 1 {
			t.Fatalf("queued edge %+v, want High seq 1", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the edge made before Watch was never delivered")
	}
}

// TestEdgesDroppedBeforeWatchAreCounted: when more edges are made before
// Watch than the queue holds, the oldest are dropped and the first edge
// delivered counts them in Lost, as a kernel line's sequence gap does
// (conditioning then infers what they hid).
func TestEdgesDroppedBeforeWatchAreCounted(t *testing.T) {
	b := sim.New(nil)
	in, err := b.OpenInput(devices.InputSpec{ID: "door", Idle: devices.Low})
	if err != nil {
		t.Fatal(err)
	}
	const edges = 100
	for i := 0; i < edges/2; i++ {
		b.Input("door").Press()
		b.Input("door").Release()
	}
	got := make(chan devices.Event, edges)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go in.Watch(ctx, func(ev devices.Event) { got <- ev })
	var first devices.Event
	select {
	case first = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no queued edge delivered")
	}
	if first.Lost == 0 || first.Lost != first.Seq-1 {
		t.Errorf("first delivered edge %+v, want Lost %d (every edge before it dropped)", first, first.Seq-1)
	}
}

// Serve returns only once the clients it took are disconnected: a client
// still connected when ctx ends is closed, not left to its deadline.
func TestServeEndsItsConnections(t *testing.T) {
	b := sim.New(nil)
	sock := filepath.Join(t.TempDir(), "sim.sock")
	l, err := sim.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- b.Serve(ctx, l) }()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	fmt.Fprintln(conn, "list")
	if _, err := rd.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	fmt.Fprintln(conn, "list") // may fail: the server end is closed
	if answer, err := rd.ReadString('\n'); err == nil {
		t.Fatalf("answered %q after Serve returned, want the connection closed", answer)
	}
}
