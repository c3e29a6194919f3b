package main

// The real hallguard binary: bench configs derived from configs/demo.yaml,
// start with a NOTIFY_SOCKET of our own (start -> READY=1), metrics, and the
// sim control socket.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hallguard/hallguard/test/hallproc"
)

// benchConfig is configs/demo.yaml for a bench daemon: hall id hallID (so
// daemons on one broker have their own topics and client id), the external
// broker, absolute playbooks_dir and key_file, its own state_dir. edit, if
// set, changes the text further.
func benchConfig(root, dir, hallID, brokerURL, stateDir string, mqttExtra string, edit func(string) string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "configs", "demo.yaml"))
	if err != nil {
		return "", err
	}
	s := string(b)
	s = regexp.MustCompile(`(?m)^  id: demo-hall$`).ReplaceAllString(s, "  id: "+hallID)
	mqttBlock := regexp.MustCompile(`(?m)^mqtt:\n(  .*\n)+`)
	if !mqttBlock.MatchString(s) {
		return "", fmt.Errorf("demo.yaml: no mqtt block")
	}
	s = mqttBlock.ReplaceAllLiteralString(s, "mqtt:\n  broker: "+brokerURL+"\n  topic_prefix: hallguard\n"+mqttExtra)
	s = regexp.MustCompile(`(?m)^state_dir: .*$`).ReplaceAllLiteralString(s, "state_dir: "+stateDir)
	s = regexp.MustCompile(`(?m)^playbooks_dir: .*$`).ReplaceAllLiteralString(s, "playbooks_dir: "+filepath.Join(root, "configs", "playbooks"))
	s = regexp.MustCompile(`(?m)^  key_file: .*$`).ReplaceAllLiteralString(s, "  key_file: "+filepath.Join(root, "configs", "demo-command.key"))
	if edit != nil {
		s = edit(s)
	}
	// configs/demo.yaml is edited by others too: fail loudly if an edit
	// above no longer applies, rather than measure something else.
	for _, want := range []string{"  id: " + hallID + "\n", "  broker: " + brokerURL + "\n", "state_dir: " + stateDir + "\n", "  key_file: /"} {
		if !strings.Contains(s, want) {
			return "", fmt.Errorf("bench config from configs/demo.yaml: %q not set (has demo.yaml changed?)", strings.TrimSpace(want))
		}
	}
	path := filepath.Join(dir, hallID+".yaml")
	return path, writeFile(path, s)
}

// daemon is a running hallguard.
type daemon struct {
	p        *proc
	hall     string
	http     string
	stateDir string
	ready    time.Duration // start -> READY=1 on NOTIFY_SOCKET
}

func (d *daemon) root() string { return "hallguard/" + d.hall }
func (d *daemon) sock() string { return filepath.Join(d.stateDir, "sim.sock") }

// startDaemon runs `hallguard run` and waits for READY=1 on a NOTIFY_SOCKET
// created here, then (if waitConnected) for /healthz to say the MQTT
// connection is up.
func startDaemon(bin, dir, cfg, hall, stateDir string, waitConnected bool, extra ...string) (*daemon, error) {
	d, wait, err := launchDaemon(bin, dir, cfg, hall, stateDir, extra...)
	if err != nil {
		return nil, err
	}
	if err := wait(); err != nil {
		return nil, err
	}
	if waitConnected {
		if err := d.waitHealth(20*time.Second, func(h health) bool { return h.Ready && h.Connected }); err != nil {
			d.p.stop(10 * time.Second)
			return nil, err
		}
	}
	return d, nil
}

// launchDaemon starts `hallguard run` with NOTIFY_SOCKET set and returns at
// once; wait waits for READY=1 and sets d.ready (start -> READY).
func launchDaemon(bin, dir, cfg, hall, stateDir string, extra ...string) (d *daemon, wait func() error, err error) {
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	d = &daemon{hall: hall, http: fmt.Sprintf("127.0.0.1:%d", port), stateDir: stateDir}
	nsPath := filepath.Join(dir, fmt.Sprintf("notify-%s-%d.sock", hall, time.Now().UnixNano()%1e9))
	ns, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: nsPath, Net: "unixgram"})
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { ns.Close(); os.Remove(nsPath) }
	args := append([]string{"run", "-config", cfg, "-state-dir", stateDir, "-http-listen", d.http, "-local-listen", "127.0.0.1:0"}, extra...)
	logPath := filepath.Join(dir, fmt.Sprintf("hallguard-%s-%d.log", hall, time.Now().UnixNano()%1e9))
	d.p, err = startProc("hallguard "+hall, logPath, []string{"NOTIFY_SOCKET=" + nsPath}, bin, args...)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	wait = func() error {
		defer cleanup()
		buf := make([]byte, 4096)
		deadline := d.p.started.Add(20 * time.Second)
		for {
			_ = ns.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			n, _, err := ns.ReadFromUnix(buf)
			if err == nil && strings.Contains("\n"+string(buf[:n])+"\n", "\nREADY=1\n") {
				d.ready = time.Since(d.p.started)
				return nil
			}
			if d.p.exited() {
				return fmt.Errorf("hallguard exited before READY: %v\n%s", d.p.waitErr(), d.p.logTail(30))
			}
			if time.Now().After(deadline) {
				d.p.stop(10 * time.Second)
				return fmt.Errorf("hallguard: no READY=1 within 20s\n%s", d.p.logTail(30))
			}
		}
	}
	return d, wait, nil
}

func (d *daemon) stop() error { return d.p.stop(15 * time.Second) }

type health = hallproc.Health

var httpc = &http.Client{Timeout: 5 * time.Second}

func (d *daemon) health() (health, error) { return hallproc.GetHealth(httpc, d.http) }

func (d *daemon) waitHealth(timeout time.Duration, ok func(health) bool) error {
	err := hallproc.WaitHealth(httpc, d.http, d.p.exited, timeout, 5*time.Millisecond, ok)
	var late *hallproc.HealthTimeout
	switch {
	case errors.Is(err, hallproc.ErrExited):
		return fmt.Errorf("hallguard exited: %v\n%s", d.p.waitErr(), d.p.logTail(30))
	case errors.As(err, &late):
		return fmt.Errorf("hallguard %s: health not as wanted after %s (last %+v, %v)\n%s", d.hall, timeout, late.Last, late.LastErr, d.p.logTail(30))
	}
	return err
}

// metrics is one scrape: full sample name (with labels) -> value.
type metrics map[string]float64

func (d *daemon) scrape() (metrics, error) {
	resp, err := httpc.Get("http://" + d.http + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := metrics{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			m[line[:i]] = v
		}
	}
	return m, sc.Err()
}

// sum adds every sample of the metric name (any labels).
func (m metrics) sum(name string) float64 {
	var s float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// histQuantile is Prometheus's histogram_quantile over the buckets of
// after-before (the observations made between two scrapes).
func histQuantile(before, after metrics, name string, q float64) float64 {
	var bs []hallproc.Bucket
	prefix := name + `_bucket{le="`
	for k, v := range after {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		bs = append(bs, hallproc.Bucket{LE: hallproc.ParseLE(strings.TrimSuffix(rest, `"}`)), N: v - before[k]})
	}
	if len(bs) == 0 {
		return math.NaN()
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].LE < bs[j].LE })
	if bs[len(bs)-1].N <= 0 {
		return math.NaN()
	}
	return hallproc.Quantile(bs, q)
}

// simConn is a connection to the sim control socket. The daemon closes a
// control connection 15 s after accepting it (sim.MaxPulse + 5 s), so it is
// redialled after 10 s.
type simConn struct {
	path  string
	c     net.Conn
	r     *bufio.Reader
	since time.Time
}

func dialSim(path string) (*simConn, error) {
	s := &simConn{path: path}
	return s, s.dial()
}

func (s *simConn) dial() error {
	if s.c != nil {
		s.c.Close()
	}
	c, err := net.DialTimeout("unix", s.path, 2*time.Second)
	if err != nil {
		return fmt.Errorf("sim socket %s: %w", s.path, err)
	}
	s.c, s.r, s.since = c, bufio.NewReader(c), time.Now()
	return nil
}

// do sends one request and reads its answer.
func (s *simConn) do(req string) error {
	if time.Since(s.since) > 10*time.Second {
		if err := s.dial(); err != nil {
			return err
		}
	}
	_ = s.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(s.c, req+"\n"); err != nil {
		return fmt.Errorf("sim %q: %w", req, err)
	}
	line, err := s.r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("sim %q: %w", req, err)
	}
	if strings.HasPrefix(line, "error") {
		return fmt.Errorf("sim %q: %s", req, strings.TrimSpace(line))
	}
	return nil
}

func (s *simConn) close() {
	if s.c != nil {
		s.c.Close()
	}
}
