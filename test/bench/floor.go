package main

// The floor: the least a durable alert can cost on this machine. One
// fdatasync of a 300-byte append on the state directory's file system,
// then a bare paho client publishing 300 bytes at QoS 1 and waiting for the
// PUBACK (and a subscriber's receipt). Also the floor's asynchronous
// publish rate, and an idle bare client (RSS, CPU), both run as child
// processes of this program so that their CPU and memory are their own.

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

const floorSize = 300

type floor struct {
	pub     paho.Client
	sub     paho.Client
	in      *inbox
	topic   string
	f       *os.File
	n       int
	payload []byte
}

// floorSample is one round of the floor.
type floorSample struct {
	fsync  time.Duration // write + fdatasync of a 300-byte append
	puback time.Duration // publish -> PUBACK
	recv   time.Duration // publish -> subscriber receipt
}

func newFloor(brokerURL, stateFS string) (*floor, error) {
	fl := &floor{topic: fmt.Sprintf("bench/floor/%d", time.Now().UnixNano()), payload: make([]byte, floorSize)}
	var err error
	if fl.pub, err = connect(brokerURL, "floor-pub", nil); err != nil {
		return nil, err
	}
	if fl.sub, err = connect(brokerURL, "floor-sub", nil); err != nil {
		return nil, err
	}
	if fl.in, err = subscribe(fl.sub, fl.topic); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(stateFS, 0o755); err != nil {
		return nil, err
	}
	fl.f, err = os.OpenFile(filepath.Join(stateFS, "floor.append"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	for i := range fl.payload {
		fl.payload[i] = 'a' + byte(i%26)
	}
	return fl, nil
}

func (fl *floor) sample() (floorSample, error) {
	var s floorSample
	fl.n++
	tag := fmt.Sprintf("%08d|", fl.n)
	copy(fl.payload, tag)
	t0 := time.Now()
	if _, err := fl.f.Write(fl.payload); err != nil {
		return s, err
	}
	if err := syscall.Fdatasync(int(fl.f.Fd())); err != nil {
		return s, err
	}
	t1 := time.Now()
	if err := publish(fl.pub, fl.topic, fl.payload); err != nil {
		return s, err
	}
	t2 := time.Now()
	m, err := fl.in.take(5*time.Second, func(m msg) bool { return bytes.HasPrefix(m.Payload, []byte(tag)) })
	if err != nil {
		return s, fmt.Errorf("floor: %w", err)
	}
	s.fsync, s.puback, s.recv = t1.Sub(t0), t2.Sub(t1), m.At.Sub(t1)
	return s, nil
}

func (fl *floor) close() {
	fl.pub.Disconnect(100)
	fl.sub.Disconnect(100)
	fl.f.Close()
}

// --- child processes ---------------------------------------------------------

// asyncResult is what `bench -child floor-async` prints.
type asyncResult struct {
	Msgs     int     `json:"msgs"`
	Inflight int     `json:"inflight"`
	Seconds  float64 `json:"seconds"`
	Rate     float64 `json:"rate"`
	CPU      float64 `json:"cpu_s"`
	Size     int     `json:"size"`
}

// runFloorAsync runs the floor's asynchronous publisher as a child process
// and returns its figures.
func runFloorAsync(brokerURL string, n, inflight int) (asyncResult, error) {
	return runFloorAsyncSize(brokerURL, n, inflight, floorSize)
}

// runFloorAsyncSize is runFloorAsync with messages of size bytes.
func runFloorAsyncSize(brokerURL string, n, inflight, size int) (asyncResult, error) {
	var r asyncResult
	self, err := os.Executable()
	if err != nil {
		return r, err
	}
	out, err := exec.Command(self, "-child", "floor-async", "-broker", brokerURL,
		"-n", strconv.Itoa(n), "-inflight", strconv.Itoa(inflight), "-size", strconv.Itoa(size)).Output()
	if err != nil {
		return r, fmt.Errorf("floor-async child: %v: %s", err, out)
	}
	err = json.Unmarshal(bytes.TrimSpace(out), &r)
	return r, err
}

// childMain runs a child mode and exits.
func childMain(mode string, args []string) {
	fs := flag.NewFlagSet("child", flag.ExitOnError)
	broker := fs.String("broker", "", "broker URL")
	n := fs.Int("n", 5000, "messages")
	inflight := fs.Int("inflight", 32, "publishes in flight")
	size := fs.Int("size", floorSize, "message size")
	_ = fs.Parse(args)
	switch mode {
	case "floor-async":
		r, err := floorAsync(*broker, *n, *inflight, *size)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		b, _ := json.Marshal(r)
		fmt.Println(string(b))
	case "idle-client":
		// A bare paho client, connected and idle until SIGTERM: the
		// baseline of a Go MQTT client's footprint.
		c, err := connect(*broker, "idle", nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("connected")
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		c.Disconnect(100)
	default:
		fmt.Fprintf(os.Stderr, "unknown child mode %q\n", mode)
		os.Exit(2)
	}
	os.Exit(0)
}

// floorAsync publishes n 300-byte QoS 1 messages as fast as it can with up
// to inflight unacknowledged, and waits for every PUBACK.
func floorAsync(broker string, n, inflight, size int) (asyncResult, error) {
	r := asyncResult{Msgs: n, Inflight: inflight, Size: size}
	c, err := connect(broker, "floor-async", nil)
	if err != nil {
		return r, err
	}
	defer c.Disconnect(100)
	payload := bytes.Repeat([]byte("x"), size)
	topic := fmt.Sprintf("bench/floor-async/%d", os.Getpid())
	toks := make(chan paho.Token, inflight-1) // + the one being waited on
	errc := make(chan error, 1)
	go func() {
		var first error
		for tok := range toks {
			if !tok.WaitTimeout(30*time.Second) && first == nil {
				first = fmt.Errorf("no PUBACK within 30s")
			}
			if err := tok.Error(); err != nil && first == nil {
				first = err
			}
		}
		errc <- first
	}()
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	t0 := time.Now()
	for range n {
		toks <- c.Publish(topic, 1, false, payload)
	}
	close(toks)
	if err := <-errc; err != nil {
		return r, err
	}
	r.Seconds = time.Since(t0).Seconds()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	r.CPU = tv(ru1.Utime) - tv(ru0.Utime) + tv(ru1.Stime) - tv(ru0.Stime)
	r.Rate = float64(n) / r.Seconds
	return r, nil
}

// startIdleClient starts the idle bare client and waits until it is
// connected.
func startIdleClient(dir, brokerURL string) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	log := filepath.Join(dir, fmt.Sprintf("idle-client-%d.log", time.Now().UnixNano()%1e9))
	p, err := startProc("idle paho client", log, nil, self, "-child", "idle-client", "-broker", brokerURL)
	if err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if b, _ := os.ReadFile(log); strings.Contains(string(b), "connected") {
			return p, nil
		}
		if p.exited() {
			break
		}
	}
	p.stop(5 * time.Second)
	return nil, fmt.Errorf("idle client not connected: %s", p.logTail(5))
}
