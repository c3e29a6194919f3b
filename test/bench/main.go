// Command bench is hallguard's benchmark harness (make bench, make
// bench-nodered). It runs the release binary against Debian's mosquitto on
// 127.0.0.1, measures every figure against a baseline taken in the same
// run (alternating rounds where it can), prints one table and writes it to
// test/bench/results.json. README.md in this folder says what each row is.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/hallguard/hallguard/mqtt/command"
)

type bench struct {
	root, bin, dist, out string
	quick                bool
	rounds, starts       int
	outage, idle         time.Duration
	pulseStep            time.Duration
	drainRate            float64
	dir                  string
	keep                 bool
	res                  *result
	key                  command.HMAC
	mq                   *mosquitto
	loadRSS              []rssNote
	async                []asyncResult
	asyncReport          asyncResult
}

func main() {
	if len(os.Args) > 2 && os.Args[1] == "-child" {
		childMain(os.Args[2], os.Args[3:])
	}
	b := &bench{}
	flag.StringVar(&b.root, "root", "", "repository root (default: found from the working directory)")
	flag.StringVar(&b.bin, "bin", "bin/hallguard", "the release binary (make build)")
	flag.StringVar(&b.dist, "dist", "dist", "make cross output, for the binary sizes")
	flag.StringVar(&b.out, "out", "test/bench/results.json", "results file")
	flag.BoolVar(&b.quick, "quick", false, "a quick development run: fewer rounds, 10 s outage and idle windows")
	flag.IntVar(&b.rounds, "rounds", 500, "latency rounds (each: floor, durable, memory)")
	flag.IntVar(&b.starts, "starts", 10, "starts for start -> READY")
	flag.DurationVar(&b.outage, "outage", 60*time.Second, "broker outage for the outbox drain")
	flag.DurationVar(&b.idle, "idle", 60*time.Second, "idle window for the idle CPU figure")
	flag.DurationVar(&b.pulseStep, "pulse-step", 3*time.Second, "duration of each step of the pulse ramp")
	flag.Float64Var(&b.drainRate, "drain-rate", 20, "incidents raised per second during the outage")
	nodered := flag.Bool("nodered", false, "run the Node-RED peer comparison (make bench-nodered) instead of the main bench")
	flag.BoolVar(&b.keep, "keep", false, "keep the temporary directory (configs, logs)")
	flag.Parse()
	if b.quick {
		setIfDefault("rounds", func() { b.rounds = 60 })
		setIfDefault("starts", func() { b.starts = 5 })
		setIfDefault("outage", func() { b.outage = 10 * time.Second })
		setIfDefault("idle", func() { b.idle = 10 * time.Second })
		setIfDefault("pulse-step", func() { b.pulseStep = 1500 * time.Millisecond })
	}
	t0 := time.Now()
	code := 0
	if err := b.setup(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "bench: interrupted; stopping what it started")
		stopAll()
		os.Exit(130)
	}()
	var err error
	key := "bench"
	if *nodered {
		key = "nodered"
		b.res.Command = "make bench-nodered"
		err = b.runPeer()
	} else {
		err = b.runAll()
	}
	stopAll()
	b.res.Seconds = time.Since(t0).Seconds()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		fmt.Fprintln(os.Stderr, "bench: logs and configs kept in", b.dir)
		code = 1
	} else if !b.keep {
		os.RemoveAll(b.dir)
	}
	b.res.print(os.Stdout)
	if len(b.res.Rows) > 0 {
		if err := b.res.save(b.outPath(), key); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			code = 1
		} else {
			fmt.Printf("\nwritten to %s (key %q)\n", b.outPath(), key)
		}
	}
	fmt.Println(b.res.verdict(err))
	os.Exit(code)
}

func setIfDefault(name string, set func()) {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	if !given {
		set()
	}
}

func (b *bench) outPath() string {
	if filepath.IsAbs(b.out) {
		return b.out
	}
	return filepath.Join(b.root, b.out)
}

func warnf(format string, a ...any) { fmt.Fprintf(os.Stderr, "bench: warning: "+format+"\n", a...) }

func step(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}

func findRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/hallguard/hallguard") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("not inside the hallguard repository: %s", wd)
		}
	}
}

func (b *bench) setup() error {
	var err error
	if b.root == "" {
		if b.root, err = findRoot(); err != nil {
			return err
		}
	}
	if !filepath.IsAbs(b.bin) {
		b.bin = filepath.Join(b.root, b.bin)
	}
	if !filepath.IsAbs(b.dist) {
		b.dist = filepath.Join(b.root, b.dist)
	}
	if _, err := os.Stat(b.bin); err != nil {
		return fmt.Errorf("%s: %w (run make build)", b.bin, err)
	}
	if _, err := mosquittoPath(); err != nil {
		return err
	}
	// The key file as daemon.ReadSigner reads it (not imported: the harness's
	// own binary stays a bare paho client, the baseline of the footprint).
	kb, err := os.ReadFile(filepath.Join(b.root, "configs", "demo-command.key"))
	if err != nil {
		return err
	}
	b.key = command.HMAC(bytes.TrimSpace(kb))
	if b.dir, err = os.MkdirTemp("", "hallguard-bench-"); err != nil {
		return err
	}
	host, _ := os.Hostname()
	ver, _ := exec.Command(b.bin, "version").Output()
	b.res = &result{
		Date: time.Now().Format("2006-01-02 15:04 MST"), Host: fmt.Sprintf("%s, %d CPUs, %s/%s", host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH),
		Command: "make bench", Quick: b.quick,
		Versions: map[string]any{"hallguard": strings.TrimSpace(string(ver)), "mosquitto": mosquittoVersion(), "go": runtime.Version()},
	}
	if b.quick {
		b.res.Command += " (-quick)"
	}
	return nil
}

// runAll is make bench.
func (b *bench) runAll() error {
	var note string
	var err error
	b.mq, note, err = newMosquitto(b.root, b.dir, "mosquitto")
	if err != nil {
		return err
	}
	b.res.note("broker: %s, config %s", mosquittoVersion(), note)
	b.res.note("state directories and the floor's fdatasync file: %s (%s)", b.dir, fsType(b.dir))
	if err := b.latency(); err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	if err := b.pulses(); err != nil {
		return fmt.Errorf("pulses: %w", err)
	}
	if err := b.drainAndIdle(); err != nil {
		return fmt.Errorf("drain/idle: %w", err)
	}
	if err := b.startup(); err != nil {
		return fmt.Errorf("startup: %w", err)
	}
	b.sizes()
	return nil
}

// fsType names the file system of path (from /proc/self/mountinfo's
// longest matching mount point).
func fsType(path string) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "?"
	}
	best, typ := "", "?"
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		mp := f[4]
		sep := 0
		for i, x := range f {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep == 0 || sep+2 >= len(f) {
			continue
		}
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best, typ = mp, f[sep+1]+" on "+f[sep+2]
		}
	}
	return typ
}
