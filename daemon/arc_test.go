package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hallguard/hallguard/arc"
	"github.com/hallguard/hallguard/daemon"
	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/mqtt/broker"
)

// arcReceiver is `hallguard arc listen` in-process on a free loopback port.
type arcReceiver struct {
	*arc.Receiver
	addr   string
	cancel context.CancelFunc
	mu     sync.Mutex
	events []string
}

func startARCReceiver(t *testing.T, key []byte) *arcReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &arcReceiver{Receiver: &arc.Receiver{Key: key}, addr: ln.Addr().String()}
	r.Handle = func(m arc.Received) {
		if m.Event != nil && m.Answer == arc.IDAck {
			r.mu.Lock()
			r.events = append(r.events, m.Frame.Data)
			r.mu.Unlock()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go r.ServeTCP(ctx, ln)
	t.Cleanup(cancel)
	return r
}

func (r *arcReceiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// startARC runs hall (hallYAML, or a variant of it) with an arc section,
// as more options say (inDir: a restart on the same state).
func startARC(t *testing.T, hall, arcYAML string, more ...hallOption) *running {
	t.Helper()
	return startHall(t, append([]hallOption{withYAML(hall), withExtra(arcYAML)}, more...)...)
}

func keyFile(t *testing.T, mode os.FileMode) string {
	p := filepath.Join(t.TempDir(), "arc-key")
	if err := os.WriteFile(p, []byte(strings.Repeat("a5", 32)+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, mode)
	return p
}

// TestRobberyReachesTheARCOverDC09: a panic press goes, encrypted, to the
// alarm receiving centre as a silent hold-up (1122, zone of the input),
// and the path's metrics show it.
func TestRobberyReachesTheARCOverDC09(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = 0xa5
	}
	rc := startARCReceiver(t, key)
	r := startARC(t, hallYAML, fmt.Sprintf("arc:\n  account: \"4F39\"\n  key_file: %s\n  category: SP4\n  receivers: [{name: primary, address: %q}]\n", keyFile(t, 0o600), rc.addr))
	r.sim.Input("panic-1").Press()
	r.eventually("robbery at the ARC", func() bool { return len(rc.got()) > 0 })
	if got := rc.got()[0]; got != "#4F39|1122 01 001" {
		t.Errorf("ARC got %q, want the silent hold-up #4F39|1122 01 001", got)
	}
	r.eventually("ACK counted", func() bool {
		m := r.metrics()
		return strings.Contains(m, `hallguard_arc_events_acked_total{path="primary"} 1`) && strings.Contains(m, `hallguard_arc_path_up{path="primary"} 1`)
	})
	// §3.5: the archive says when and by which receiver the ARC took it.
	r.eventually("the ARC's ACK in the journal", func() bool {
		b := r.get("http://" + r.d.LocalAddr() + "/api/journal/export?format=jsonl&kind=arc")
		return strings.Contains(b, `"path":"primary"`) && strings.Contains(b, `"code":122`) && strings.Contains(b, `.v1"`)
	})
}

// TestExposedARCKeyStopsTheStart: a key file others can read is refused
// and the daemon does not start.
func TestExposedARCKeyStopsTheStart(t *testing.T) {
	dir := t.TempDir()
	root, _ := filepath.Abs(filepath.Join("..", "configs"))
	y := hallYAML + fmt.Sprintf("arc:\n  account: \"4F39\"\n  key_file: %s\n  category: SP4\n  receivers: [{name: primary, address: \"127.0.0.1:1\"}]\n", keyFile(t, 0o644)) + "state_dir: " + dir + "\n"
	cfg, err := config.Parse(filepath.Join(root, "daemon-test.yaml"), []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = daemon.Run(ctx, cfg, daemon.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), "readable by group or others") {
		t.Fatalf("Run: %v, want the exposed key refused", err)
	}
}

// TestARCKeyFileIsRelativeToTheConfig: like every file the config names,
// a relative arc.key_file is read from the config's folder, not from the
// folder the daemon happens to run in.
func TestARCKeyFileIsRelativeToTheConfig(t *testing.T) {
	dir := filepath.Dir(keyFile(t, 0o600))
	playbooks, _ := filepath.Abs(filepath.Join("..", "configs", "playbooks"))
	y := hallYAML + fmt.Sprintf("arc:\n  account: \"4F39\"\n  key_file: arc-key\n  category: SP4\n  receivers: [{name: primary, address: \"127.0.0.1:1\"}]\nstate_dir: %s\nplaybooks_dir: %s\n", dir, playbooks)
	cfg, err := config.Parse(filepath.Join(dir, "hall.yaml"), []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	o, err := daemon.ARCOptions(cfg)
	if err != nil {
		t.Fatalf("ARCOptions: %v, want the key read from %s", err, dir)
	}
	if len(o.Key) != 32 {
		t.Errorf("key of %d bytes, want 32", len(o.Key))
	}
}

// TestFailedARCPathIsReportedOnTheOtherPaths: the primary receiver is
// gone; its path fails and the trouble goes to the center on MQTT (the
// conditions topic) and, as Contact ID 350, through the backup receiver.
func TestFailedARCPathIsReportedOnTheOtherPaths(t *testing.T) {
	deadAddr := freeAddr(t) // nothing listens there
	backup := startARCReceiver(t, nil)
	r := startARC(t, hallYAML, fmt.Sprintf(`arc:
  account: "4F39"
  category: SP6
  receivers:
    - {name: primary, address: %q, poll_interval: 1s, fail_after: 2s}
    - {name: backup, address: %q, poll_interval: 1s, fail_after: 2s}
`, deadAddr, backup.addr))
	var mu sync.Mutex
	var conds []map[string]any
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + r.d.BrokerAddr()).SetClientID("center"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	c.Subscribe("hallguard/t-hall/events/condition", 1, func(_ paho.Client, m paho.Message) {
		var v map[string]any
		if json.Unmarshal(m.Payload(), &v) == nil {
			mu.Lock()
			conds = append(conds, v)
			mu.Unlock()
		}
	}).Wait()
	r.eventually("arc path trouble on MQTT", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, v := range conds {
			if v["kind"] == "arc_path_failed:primary" && v["active"] == true && v["class"] == "trouble" {
				return true
			}
		}
		return false
	})
	r.eventually("communication trouble at the backup receiver", func() bool {
		for _, e := range backup.got() {
			if e == "#4F39|1350 01 000" {
				return true
			}
		}
		return false
	})
	if !strings.Contains(r.metrics(), `hallguard_arc_path_up{path="primary"} 0`) {
		t.Error("hallguard_arc_path_up of the dead primary is not 0")
	}
}

// TestDualPathRobberyWithBrokerDown: MQTT and DC-09 at once, the broker
// down from the start. The robbery reaches the ARC over DC-09, the ARC is
// told the MQTT path failed (350), and once the broker is back MQTT
// catches up: the robbery report is delivered there too.
func TestDualPathRobberyWithBrokerDown(t *testing.T) {
	brokerAddr := freeAddr(t) // nothing listens there yet: the broker is down
	rc := startARCReceiver(t, nil)
	y := strings.Replace(hallYAML, `mqtt: {broker: embedded, listen: "127.0.0.1:0"}`, `mqtt: {broker: "tcp://`+brokerAddr+`", max_reconnect: 1s}`, 1)
	if y == hallYAML {
		t.Fatal("test hall's mqtt line not found")
	}
	r := startARC(t, y, fmt.Sprintf(`arc:
  account: "4F39"
  category: SP6
  receivers: [{name: primary, address: %q, poll_interval: 1s, fail_after: 2s}]
`, rc.addr))

	r.sim.Input("panic-1").Press()
	has := func(want string) func() bool {
		return func() bool {
			for _, e := range rc.got() {
				if e == want {
					return true
				}
			}
			return false
		}
	}
	r.eventually("robbery at the ARC with the broker down", has("#4F39|1122 01 001"))
	r.eventually("MQTT path failure at the ARC", has("#4F39|1350 01 000"))
	pending := func() float64 {
		resp, err := http.Get("http://" + r.d.HTTPAddr() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h struct {
			Pending float64 `json:"reports_pending"`
		}
		json.NewDecoder(resp.Body).Decode(&h)
		return h.Pending
	}
	if n := pending(); n != 1 {
		t.Errorf("%v reports pending on MQTT while the broker is down, want the robbery's 1", n)
	}

	b, err := broker.Start(brokerAddr, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r.eventually("MQTT caught up", func() bool { return pending() == 0 })
	r.eventually("MQTT path restored at the ARC", has("#4F39|3350 01 000"))
}

// TestARCChangeNeedsRestart: the DC-09 link does not change live; a reload
// that changes arc: is refused as needing a restart, never half-applied.
func TestARCChangeNeedsRestart(t *testing.T) {
	rc := startARCReceiver(t, nil)
	arcYAML := func(account string) string {
		return fmt.Sprintf("arc:\n  account: %q\n  category: SP4\n  receivers: [{name: primary, address: %q}]\n", account, rc.addr)
	}
	r := startHall(t, fromFile(t.TempDir()), withExtra(arcYAML("4F39")))
	body, err := os.ReadFile(r.file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.file, []byte(strings.Replace(string(body), arcYAML("4F39"), arcYAML("5A5A"), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.d.Reload(); !errors.Is(err, daemon.ErrNeedsRestart) || !strings.Contains(err.Error(), "arc") {
		t.Errorf("reload with a new arc.account: %v, want ErrNeedsRestart naming arc", err)
	}
}

// TestARCLaneTakesReportsJournalledBeforeACrash: a crash after the journal
// committed a robbery report but before the DC-09 lane (arc.db) stored its
// event lost the robbery on the ARC path for good: the restart restored the
// incident from the journal, but nothing handed its report to the lane
// again (issue #16: a crash loses nothing on either path).
func TestARCLaneTakesReportsJournalledBeforeACrash(t *testing.T) {
	deadAddr := freeAddr(t) // nothing listens there
	arcYAML := func(addr string) string {
		return fmt.Sprintf("arc:\n  account: \"4F39\"\n  category: SP6\n  receivers: [{name: primary, address: %q}]\n", addr)
	}
	dir := t.TempDir()
	r := startARC(t, hallYAML, arcYAML(deadAddr), inDir(dir))
	r.sim.Input("panic-1").Press()
	r.eventually("robbery journalled and in the DC-09 lane", func() bool {
		_, ok := r.robbery()
		return ok && r.metricValue(`hallguard_arc_events_pending{path="primary"}`) >= 1
	})
	r.stop() // the journal is committed and closed

	// The crash: the journal has the report, the lane never stored it.
	crashBeforeARCPush(t, filepath.Join(dir, daemon.ARCQueueFile))

	rc := startARCReceiver(t, nil)
	r = startARC(t, hallYAML, arcYAML(rc.addr), inDir(dir))
	r.eventually("the journalled robbery at the ARC after the restart", func() bool {
		for _, e := range rc.got() {
			if strings.Contains(e, "1122 01 001") {
				return true
			}
		}
		return false
	})
}

// crashBeforeARCPush leaves the DC-09 lane at path as a crash between the
// journal's commit and the lane's push leaves it: the events it holds
// never stored, its report mark below the first of them.
func crashBeforeARCPush(t *testing.T, path string) {
	t.Helper()
	q, err := arc.OpenBoltQueue(path)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	evs, err := q.Pending()
	if err != nil || len(evs) == 0 {
		t.Fatalf("precondition: the lane holds the robbery: %d events, %v", len(evs), err)
	}
	for _, ev := range evs {
		if err := q.Retire(ev.Key); err != nil {
			t.Fatal(err)
		}
	}
	if evs[0].Report == 0 {
		t.Fatalf("precondition: the lane's first event names its report: %+v", evs[0])
	}
	if err := q.MarkReports(evs[0].Report - 1); err != nil {
		t.Fatal(err)
	}
}

// TestNewARCLaneDoesNotSendTheJournalsHistory: a hall that adds an arc
// section starts the lane at the journal's mark. Its history (a robbery
// of the run before) is not sent to the ARC; what happens after is.
func TestNewARCLaneDoesNotSendTheJournalsHistory(t *testing.T) {
	dir := t.TempDir()
	r := startHall(t, inDir(dir))
	r.sim.Input("panic-1").Press()
	r.eventually("robbery", func() bool { _, ok := r.robbery(); return ok })
	r.stop()

	rc := startARCReceiver(t, nil)
	r = startARC(t, hallYAML, fmt.Sprintf("arc:\n  account: \"4F39\"\n  category: SP6\n  receivers: [{name: primary, address: %q}]\n", rc.addr), inDir(dir))
	r.sim.Input("call-1").Press()
	r.eventually("the fire at the ARC", func() bool {
		for _, e := range rc.got() {
			if strings.Contains(e, "1115 01 002") {
				return true
			}
		}
		return false
	})
	for _, e := range rc.got() {
		if strings.Contains(e, "1122") {
			t.Fatalf("the run before's robbery sent to a lane added after it: %q", rc.got())
		}
	}
}
