package main

// In-process benchmarks for profiling what make bench measures on the
// binary: daemon.Run with the sim backend (as daemon/daemon_test.go runs
// it) against the same Debian mosquitto. The daemon has no pprof endpoint;
// these are the profiling variant, and they exist only here. There are no
// Test functions, so `go test ./...` runs nothing here.
//
//	go test -run '^$' -bench PressDurable -benchtime 300x -cpuprofile /tmp/press.cpu -trace /tmp/press.trace ./test/bench
//	go tool pprof -top /tmp/press.cpu
//	go tool trace -pprof=syscall /tmp/press.trace > /tmp/press.syscall && go tool pprof -top /tmp/press.syscall
//	go test -run '^$' -bench OutboxDrain -benchtime 3x -drainprofile /tmp/drain ./test/bench
//	go tool pprof -top /tmp/drain-*.prof
//	go test -run '^$' -bench IdleHeap -benchtime 1x -heapprofile /tmp/idle.heap ./test/bench
//	go tool pprof -sample_index=inuse_space -top /tmp/idle.heap

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	hg "github.com/hallguard/hallguard/daemon"
	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/devices/sim"
)

var (
	drainProfile = flag.String("drainprofile", "", "BenchmarkOutboxDrain: write a CPU profile of each drain (broker back -> outbox empty) to PREFIX-N.prof")
	drainN       = flag.Int("drain.n", 2000, "BenchmarkOutboxDrain: reports in the backlog")
	heapProfile  = flag.String("heapprofile", "", "BenchmarkIdleHeap, BenchmarkOutboxDrain: write the heap profile (in use) of the daemon here")
)

type inproc struct {
	d      *hg.Daemon
	sim    *sim.Backend
	mq     *mosquitto
	dir    string
	cancel context.CancelFunc
	done   chan error
}

// startInProc runs daemon.Run on a bench config against a mosquitto of its
// own. The log goes to a file at info, as the binary's goes to stderr.
func startInProc(b *testing.B, hall, mqttExtra string, edit func(string) string, memory bool) *inproc {
	b.Helper()
	if _, err := mosquittoPath(); err != nil {
		b.Skip(err)
	}
	root, err := findRoot()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	mq, _, err := newMosquitto(root, dir, "mosquitto")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(stopAll)
	state := filepath.Join(dir, "state")
	path, err := benchConfig(root, dir, hall, mq.url(), state, mqttExtra, edit)
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	cfg.HTTP.Listen, cfg.HTTP.LocalListen = "127.0.0.1:0", "127.0.0.1:0"
	logf, err := os.Create(filepath.Join(dir, "hallguard.log"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { logf.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	r := &inproc{mq: mq, dir: dir, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan *hg.Daemon, 1)
	go func() {
		r.done <- hg.Run(ctx, cfg, hg.Options{Logger: slog.New(slog.NewTextHandler(logf, nil)), MemoryOutbox: memory,
			Ready: func(d *hg.Daemon) { ready <- d }})
	}()
	select {
	case r.d = <-ready:
	case err := <-r.done:
		b.Fatalf("Run ended before ready: %v", err)
	case <-time.After(30 * time.Second):
		b.Fatal("not ready after 30s")
	}
	r.sim = r.d.Backend().(*sim.Backend)
	b.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			b.Error("Run did not stop")
		}
	})
	dd := r.http()
	if err := dd.waitHealth(20*time.Second, func(h health) bool { return h.Ready && h.Connected }); err != nil {
		b.Fatal(err)
	}
	return r
}

// http is a view of the in-process daemon for the HTTP helpers.
func (r *inproc) http() *daemon {
	return &daemon{http: r.d.HTTPAddr(), p: &proc{name: "in-process hallguard"}}
}

func subscribeB(b *testing.B, brokerURL, filter string) (paho.Client, *inbox) {
	b.Helper()
	c, err := connect(brokerURL, "prof", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Disconnect(100) })
	in, err := subscribe(c, filter)
	if err != nil {
		b.Fatal(err)
	}
	return c, in
}

func benchPress(b *testing.B, memory bool) {
	hall := "prof-durable"
	if memory {
		hall = "prof-memory"
	}
	r := startInProc(b, hall, "", nil, memory)
	_, alerts := subscribeB(b, r.mq.url(), "hallguard/"+hall+"/alerts/robbery")
	in := r.sim.Input("panic-teller-1")
	var lat dist
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		in.Press()
		m, err := alerts.take(10*time.Second, isRaised)
		if err != nil {
			b.Fatal(err)
		}
		rep, _ := parseReport(m)
		if t, err := time.Parse(time.RFC3339Nano, rep.OccurredAt); err == nil {
			lat = append(lat, m.At.Sub(t))
		}
		in.Release()
		if _, err := r.d.Engine().Do(engine.Command{ID: fmt.Sprintf("prof-%d", i), Verb: engine.VerbResolve, Incident: rep.Incident,
			By: "bench-center", Origin: engine.OriginCenter, Authenticated: true}); err != nil {
			b.Fatal(err)
		}
		if _, err := alerts.take(10*time.Second, func(m msg) bool {
			rr, ok := parseReport(m)
			return ok && rr.Incident == rep.Incident && rr.Event == "resolved"
		}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		time.Sleep(2*panicDebounce + 10*time.Millisecond) // see presser.press
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(msf(lat.p50()), "p50-ms")
	b.ReportMetric(msf(lat.p99()), "p99-ms")
}

// BenchmarkPressDurable: a panic press to the robbery report at a
// subscriber, durable outbox; then release and resolve.
func BenchmarkPressDurable(b *testing.B) { benchPress(b, false) }

// BenchmarkPressMemory: the same with -outbox memory.
func BenchmarkPressMemory(b *testing.B) { benchPress(b, true) }

// BenchmarkOutboxDrain: a backlog of -drain.n reports raised while the
// broker is down, then the time from the daemon's reconnection to an empty
// outbox. With -drainprofile, each drain is CPU-profiled (broker back ->
// outbox empty; the raising and resolving in between are not).
func BenchmarkOutboxDrain(b *testing.B) {
	n := *drainN
	root, err := findRoot()
	if err != nil {
		b.Fatal(err)
	}
	pb := filepath.Join(b.TempDir(), "playbooks")
	if err := drainPlaybooks(root, pb, n); err != nil {
		b.Fatal(err)
	}
	r := startInProc(b, "prof-drain", "  max_reconnect: 1s\n", drainConfigEdit(pb, n), false)
	dd := r.http()
	var total time.Duration
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		if err := r.mq.stop(); err != nil {
			b.Fatal(err)
		}
		if err := dd.waitHealth(10*time.Second, func(h health) bool { return !h.Connected }); err != nil {
			b.Fatal(err)
		}
		for j := 1; j <= n; j++ {
			r.sim.Input(drainInput(j)).Press()
		}
		if err := dd.waitHealth(30*time.Second, func(h health) bool { return h.Pending >= n }); err != nil {
			b.Fatal(err)
		}
		var pf *os.File
		if *drainProfile != "" {
			if pf, err = os.Create(fmt.Sprintf("%s-%d.prof", *drainProfile, i)); err != nil {
				b.Fatal(err)
			}
			if err := pprof.StartCPUProfile(pf); err != nil {
				b.Fatal(err)
			}
		}
		if err := r.mq.start(); err != nil {
			b.Fatal(err)
		}
		var connected time.Time
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(2 * time.Millisecond) {
			h, err := dd.health()
			if err == nil && h.Connected && connected.IsZero() {
				connected = time.Now()
				b.StartTimer()
			}
			if err == nil && h.Connected && h.Pending == 0 {
				b.StopTimer()
				total += time.Since(connected)
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("not drained: %+v", h)
			}
		}
		if pf != nil {
			pprof.StopCPUProfile()
			pf.Close()
		}
		// Resolve them all (reports sent live) and release the inputs, so
		// that the next round raises them again.
		for _, inc := range r.d.Engine().Incidents() {
			if strings.HasPrefix(inc.Playbook, "bench-") && inc.State == engine.StateActive {
				if _, err := r.d.Engine().Do(engine.Command{ID: "prof-res-" + inc.ID, Verb: engine.VerbResolve, Incident: inc.ID,
					By: "bench-center", Origin: engine.OriginCenter, Authenticated: true}); err != nil {
					b.Fatal(err)
				}
			}
		}
		for j := 1; j <= n; j++ {
			r.sim.Input(drainInput(j)).Release()
		}
		if err := dd.waitHealth(60*time.Second, func(h health) bool { return h.Pending == 0 }); err != nil {
			b.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // past the inputs' debounce
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "reports/s")
	if *heapProfile != "" { // what a daemon with n inputs holds
		runtime.GC()
		writeHeapProfile(b, *heapProfile)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.Logf("HeapInuse %.1f MiB, HeapAlloc %.1f MiB, Sys %.1f MiB, goroutines %d", float64(ms.HeapInuse)/(1<<20), float64(ms.HeapAlloc)/(1<<20), float64(ms.Sys)/(1<<20), runtime.NumGoroutine())
	}
}

// writeHeapProfile writes the heap profile (in use) to path.
func writeHeapProfile(b *testing.B, path string) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
	f.Close()
}

// BenchmarkIdleHeap starts the daemon on the demo config, leaves it idle
// for 10 s and writes a heap profile (in use) and the runtime's memory
// classes: what the idle daemon's anonymous memory is.
func BenchmarkIdleHeap(b *testing.B) {
	if *heapProfile != "" {
		runtime.MemProfileRate = 1 // every allocation, from before the daemon starts
	}
	r := startInProc(b, "prof-idle", "", nil, false)
	time.Sleep(10 * time.Second)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mib := func(v uint64) string { return fmt.Sprintf("%.2f MiB", float64(v)/(1<<20)) }
	classes := map[string]uint64{"HeapInuse": ms.HeapInuse, "HeapIdle-HeapReleased": ms.HeapIdle - ms.HeapReleased,
		"StackInuse": ms.StackSys, "GCSys": ms.GCSys, "MSpan+MCache": ms.MSpanSys + ms.MCacheSys, "BuckHash+Other": ms.BuckHashSys + ms.OtherSys}
	keys := make([]string, 0, len(classes))
	for k := range classes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return classes[keys[i]] > classes[keys[j]] })
	for _, k := range keys {
		b.Logf("%-22s %s", k, mib(classes[k]))
	}
	b.Logf("goroutines %d, Sys %s, HeapAlloc %s", runtime.NumGoroutine(), mib(ms.Sys), mib(ms.HeapAlloc))
	if *heapProfile != "" {
		writeHeapProfile(b, *heapProfile)
	}
	_ = r
	for i := 0; i < b.N; i++ {
	}
}
