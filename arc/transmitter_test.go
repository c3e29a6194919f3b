package arc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/devices/clock"
)

// testReceiver is `arc listen` in-process on a free loopback port.
type testReceiver struct {
	*Receiver
	addr   string
	cancel context.CancelFunc
	mu     sync.Mutex
	got    []Received
}

func startReceiver(t *testing.T, network string, key []byte, clk ...clock.Clock) *testReceiver {
	t.Helper()
	tr := &testReceiver{Receiver: &Receiver{Key: key}}
	if len(clk) > 0 {
		tr.Clock = clk[0] // the receiver's clock agrees with the box's
	}
	tr.Handle = func(r Received) {
		tr.mu.Lock()
		tr.got = append(tr.got, r)
		tr.mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	tr.cancel = cancel
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tr.addr = pc.LocalAddr().String()
		go tr.ServeUDP(ctx, pc)
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tr.addr = ln.Addr().String()
		go tr.ServeTCP(ctx, ln)
	}
	t.Cleanup(cancel)
	return tr
}

// collect returns, in order, what f makes of each exchange the receiver
// handled, where f says ok.
func (tr *testReceiver) collect(f func(Received) (string, bool)) []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []string
	for _, r := range tr.got {
		if s, ok := f(r); ok {
			out = append(out, s)
		}
	}
	return out
}

// events returns the ADM-CID/SIA-DCS messages the receiver ACKed, as data,
// each once: a retransmission (same sequence number and data, sent again
// when the ACK came late, as over UDP on a busy machine) is the same event,
// and a receiving centre counts it once.
func (tr *testReceiver) events() []string {
	seen := map[string]bool{}
	return tr.collect(func(r Received) (string, bool) {
		key := fmt.Sprintf("%04d|%s", r.Frame.Seq, r.Frame.Data)
		if r.Answer != IDAck || r.Event == nil || seen[key] {
			return "", false
		}
		seen[key] = true
		return r.Frame.Data, true
	})
}

// answers returns each frame's id and the receiver's answer, "ID:ANSWER".
func (tr *testReceiver) answers() []string {
	return tr.collect(func(r Received) (string, bool) { return r.Frame.ID + ":" + r.Answer, true })
}

// waitFor polls cond (not a timing assertion: it only bounds a hang).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("gave up waiting for %s", what)
}

type txOpts func(*Options)

func newTx(t *testing.T, clk clock.Clock, key []byte, paths []Path, more ...txOpts) (*Transmitter, *BoltQueue, *prometheus.Registry) {
	t.Helper()
	q, err := OpenBoltQueue(filepath.Join(t.TempDir(), "arc.db"))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	o := Options{Account: "1234", Receiver: "1", Line: "1", Key: key, Paths: paths, AckTimeout: 300 * time.Millisecond,
		Retries: 2, Clock: clk, Queue: q, Mapping: &Mapping{Inputs: testInputs}, Registerer: reg}
	for _, f := range more {
		f(&o)
	}
	tx, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Close(); q.Close() })
	return tx, q, reg
}

// TestEveryMappedEventReachesTheReceiver sends every mapped event of the
// README table through the transmitter to `arc listen`, with encryption
// off and on (AES-128 and AES-256), over TCP and UDP, and checks each
// arrives, in order, and is retired from the queue.
func TestEveryMappedEventReachesTheReceiver(t *testing.T) {
	at := time.Now()
	reports := []engine.Report{
		{ID: "r.v1", Playbook: "robbery", Variant: "armed", Event: engine.EventRaised, Source: "panic-teller-1"},
		{ID: "d.v1", Playbook: "duress", Event: engine.EventRaised},
		{ID: "f.v1", Playbook: "fire", Event: engine.EventRaised, Source: "smoke-hall"},
		{ID: "f2.v1", Playbook: "fire", Event: engine.EventRaised, Source: "callpoint-exit"},
		{ID: "f3.v1", Playbook: "fire", Event: engine.EventRaised, Source: "staff"},
		{ID: "dr.v1", Playbook: "robbery", Event: engine.EventRaised, Source: "panic-vault", Drill: true},
		{ID: "r.v9", Playbook: "robbery", Variant: "armed", Event: engine.EventResolved, Source: "panic-teller-1"},
	}
	conds := []engine.Condition{
		{Class: engine.ClassSupervisory, Kind: "pre_alarm", Input: "smoke-hall", Active: true, Time: at},
		{Class: engine.ClassTamper, Kind: "tamper", Input: "box-tamper", Active: true, Time: at},
		{Class: engine.ClassTamper, Kind: "loop_open", Input: "panic-vault", Active: true, Time: at},
		{Class: engine.ClassTrouble, Kind: "stuck", Input: "panic-teller-1", Active: true, Time: at},
		{Class: engine.ClassTrouble, Kind: "line_lost", Input: "smoke-hall", Active: true, Time: at},
		{Class: engine.ClassTrouble, Kind: "ac_loss", Active: true, Time: at},
		{Class: engine.ClassTrouble, Kind: "output_failed", Active: true, Time: at},
		{Class: engine.ClassTrouble, Kind: "journal_degraded", Active: true, Time: at},
		{Class: engine.ClassTrouble, Kind: KindMQTTPathFailed, Active: true, Time: at},
		{Class: engine.ClassSupervisory, Kind: "walk_test", Active: true, Time: at},
		{Class: engine.ClassSupervisory, Kind: "walk_test", Active: false, Time: at},
	}
	want := []string{"1122 01 001", "1121 01 000", "1111 01 003", "1115 01 004", "1110 01 000", "1601 01 002", "3122 01 001",
		"1200 01 003", "1137 01 005", "1144 01 002", "1380 01 001", "1330 01 003", "1301 01 000", "1320 01 000",
		"1300 01 000", "1350 01 000", "1607 01 000", "3607 01 000"}
	for i := range want {
		want[i] = "#1234|" + want[i]
	}
	for _, tc := range []struct {
		name, network string
		key           []byte
	}{
		{"tcp clear", "tcp", nil},
		{"tcp aes128", "tcp", bytes.Repeat([]byte{7}, 16)},
		{"udp aes256", "udp", bytes.Repeat([]byte{9}, 32)},
		{"udp clear", "udp", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := startReceiver(t, tc.network, tc.key)
			tx, q, _ := newTx(t, clock.Real{}, tc.key, []Path{{Name: "primary", Network: tc.network, Addr: rc.addr, FailAfter: time.Hour}})
			for _, r := range reports {
				tx.Report(r)
			}
			for _, c := range conds {
				tx.Condition(c)
			}
			waitFor(t, "every event ACKed", func() bool { return len(rc.events()) >= len(want) && q.Len() == 0 })
			if got := rc.events(); !slices.Equal(got, want) {
				t.Errorf("receiver got\n%q\nwant\n%q", got, want)
			}
			rc.mu.Lock()
			for _, r := range rc.got {
				if r.Frame.Encrypted != (tc.key != nil) {
					t.Errorf("%s: encrypted %v", r.Frame.ID, r.Frame.Encrypted)
				}
			}
			rc.mu.Unlock()
		})
	}
}

// TestNAKForTimestampOutOfWindowResendsWithReceiverTime: the box's clock
// is two hours off; the receiver NAKs with its own time, the transmitter
// resends with the corrected time and the robbery is ACKed.
func TestNAKForTimestampOutOfWindowResendsWithReceiverTime(t *testing.T) {
	key := bytes.Repeat([]byte{5}, 24)
	rc := startReceiver(t, "tcp", key)
	clk := clock.NewFake(time.Now().Add(-2 * time.Hour))
	tx, q, reg := newTx(t, clk, key, []Path{{Name: "primary", Network: "tcp", Addr: rc.addr, FailAfter: time.Hour}})
	tx.Report(engine.Report{ID: "r.v1", Playbook: "robbery", Variant: "armed", Event: engine.EventRaised, Source: "panic-teller-1"})
	waitFor(t, "robbery ACKed", func() bool { return len(rc.events()) == 1 && q.Len() == 0 })
	if got := rc.answers(); !slices.Equal(got, []string{"ADM-CID:NAK", "ADM-CID:ACK"}) {
		t.Errorf("answers %v, want a NAK then an ACK", got)
	}
	if n := value(tx.m.naks.WithLabelValues("primary")); n != 1 {
		t.Errorf("naks %v, want 1", n)
	}
	_ = reg
}

// TestFailoverPrimaryToBackup: the primary receiver does not answer; a
// trouble event goes to the backup after the retries on the primary, and
// is retired there.
func TestFailoverPrimaryToBackup(t *testing.T) {
	for _, mode := range []string{"silent", "refused"} {
		t.Run(mode, func(t *testing.T) {
			primary, backup, tx, q := failoverPair(t, mode)
			tx.Condition(engine.Condition{Class: engine.ClassTrouble, Kind: "stuck", Input: "panic-teller-1", Active: true, Time: time.Now()})
			waitFor(t, "trouble ACKed by the backup", func() bool { return len(backup.events()) == 1 && q.Len() == 0 })
			if got := backup.events()[0]; got != "#1234|1380 01 001" {
				t.Errorf("backup got %q", got)
			}
			if r := value(tx.m.retries.WithLabelValues("primary")); r != 2 {
				t.Errorf("primary retries %v, want 2", r)
			}
			if s := tx.State("primary"); s != PathDegraded {
				t.Errorf("primary %v, want degraded", s)
			}
			// The next event does not wait for the primary's retries.
			tx.Condition(engine.Condition{Class: engine.ClassTrouble, Kind: "stuck", Input: "panic-teller-1", Active: false, Time: time.Now()})
			waitFor(t, "second event ACKed by the backup", func() bool { return len(backup.events()) == 2 && q.Len() == 0 })
			if r := value(tx.m.retries.WithLabelValues("primary")); r != 2 {
				t.Errorf("primary retries %v after the second event, want still 2 (one try on a degraded path)", r)
			}
			_ = primary
		})
	}
}

// TestAlarmFailsOverBeforeRetrying: a robbery or a fire does not wait
// for retries on a primary that has just gone silent: it goes to the
// backup after one try (§3 2: no delay), and retries come after that.
func TestAlarmFailsOverBeforeRetrying(t *testing.T) {
	_, backup, tx, q := failoverPair(t, "silent")
	tx.Report(engine.Report{ID: "r.v1", Playbook: "robbery", Variant: "armed", Event: engine.EventRaised, Source: "panic-teller-1"})
	waitFor(t, "robbery ACKed by the backup", func() bool { return len(backup.events()) == 1 && q.Len() == 0 })
	if got := backup.events()[0]; got != "#1234|1122 01 001" {
		t.Errorf("backup got %q", got)
	}
	if r := value(tx.m.retries.WithLabelValues("primary")); r != 0 {
		t.Errorf("primary retries %v before the robbery went to the backup, want 0", r)
	}
}

// failoverPair starts a primary (silent, or refusing connections) and a
// backup receiver, and a transmitter for them.
func failoverPair(t *testing.T, mode string) (*testReceiver, *testReceiver, *Transmitter, *BoltQueue) {
	t.Helper()
	primary := startReceiver(t, "tcp", nil)
	backup := startReceiver(t, "tcp", nil)
	if mode == "silent" {
		primary.SetSilent(true)
	} else {
		primary.cancel()
		waitFor(t, "primary closed", func() bool {
			c, err := net.Dial("tcp", primary.addr)
			if err == nil {
				c.Close()
			}
			return err != nil
		})
	}
	tx, q, _ := newTx(t, clock.Real{}, nil, []Path{
		{Name: "primary", Network: "tcp", Addr: primary.addr, FailAfter: time.Hour},
		{Name: "backup", Network: "tcp", Addr: backup.addr, FailAfter: time.Hour},
	})
	return primary, backup, tx, q
}

// TestSupervisionNoticesSilentReceiverWithinReportingTime: EN 50136 SP4
// (reporting time 180 s): polls every 45 s, failed after 90 s without an
// ACK. The receiver stops answering; on the fake clock the path is failed,
// and trouble raised, before 180 s have passed since its last ACK. Its
// return is noticed on the next poll.
func TestSupervisionNoticesSilentReceiverWithinReportingTime(t *testing.T) {
	const reporting = 180 * time.Second
	start := time.Now()
	clk := clock.NewFake(start)
	rc := startReceiver(t, "tcp", nil, clk)
	type change struct {
		state PathState
		at    time.Time
	}
	var mu sync.Mutex
	var changes []change
	tx, _, reg := newTx(t, clk, nil, []Path{{Name: "primary", Network: "tcp", Addr: rc.addr, PollInterval: reporting / 4, FailAfter: reporting / 2}},
		func(o *Options) {
			o.OnPathState = func(_ string, s PathState, _ string) {
				mu.Lock()
				changes = append(changes, change{s, clk.Now()})
				mu.Unlock()
			}
		})
	p := tx.paths[0]
	tick := func() {
		n := p.polls.Load()
		clk.Advance(reporting / 4)
		waitFor(t, "poll done", func() bool { return p.polls.Load() > n })
	}
	tick() // t+45s: a poll, ACKed
	if got := rc.answers(); !slices.Equal(got, []string{"NULL:ACK"}) {
		t.Fatalf("answers %v, want one ACKed NULL poll", got)
	}
	lastAck := clk.Now()
	rc.SetSilent(true)
	for i := 0; i < 4 && tx.State("primary") != PathFailed; i++ {
		tick()
	}
	if tx.State("primary") != PathFailed {
		t.Fatalf("primary %v after %v of silence, want failed", tx.State("primary"), clk.Now().Sub(lastAck))
	}
	mu.Lock()
	var failedAt time.Time
	for _, c := range changes {
		if c.state == PathFailed {
			failedAt = c.at
		}
	}
	mu.Unlock()
	if failedAt.IsZero() || failedAt.Sub(lastAck) > reporting {
		t.Errorf("trouble raised %v after the last ACK, want within %v", failedAt.Sub(lastAck), reporting)
	}
	if up := value(tx.m.up.WithLabelValues("primary")); up != 0 {
		t.Errorf("hallguard_arc_path_up %v, want 0", up)
	}
	rc.SetSilent(false)
	tick()
	if tx.State("primary") != PathOK {
		t.Errorf("primary %v after the receiver answers again, want ok", tx.State("primary"))
	}
	_ = reg
}

// TestPeriodicTestReport: a 602 at the configured interval on each path.
func TestPeriodicTestReport(t *testing.T) {
	clk := clock.NewFake(time.Now())
	primary := startReceiver(t, "tcp", nil, clk)
	backup := startReceiver(t, "udp", nil, clk)
	tx, _, _ := newTx(t, clk, nil, []Path{
		{Name: "primary", Network: "tcp", Addr: primary.addr, FailAfter: 48 * time.Hour, TestInterval: 24 * time.Hour},
		{Name: "backup", Network: "udp", Addr: backup.addr, FailAfter: 48 * time.Hour, TestInterval: 24 * time.Hour},
	})
	clk.Advance(24 * time.Hour)
	waitFor(t, "602 on both paths", func() bool { return len(primary.events()) == 1 && len(backup.events()) == 1 })
	if primary.events()[0] != "#1234|1602 01 000" || backup.events()[0] != "#1234|1602 01 000" {
		t.Errorf("got %q and %q", primary.events(), backup.events())
	}
	_ = tx
}

// TestQueuedEventsSurviveRestart: no receiver answers; the transmitter is
// closed (a crash) and a new one on the same file sends the backlog in
// order once a receiver is there.
func TestQueuedEventsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	rc := startReceiver(t, "tcp", nil)
	rc.SetSilent(true)
	q, err := OpenBoltQueue(filepath.Join(dir, "arc.db"))
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Now())
	paths := []Path{{Name: "primary", Network: "tcp", Addr: rc.addr, FailAfter: time.Hour}}
	tx, err := New(Options{Account: "1234", Paths: paths, AckTimeout: 50 * time.Millisecond, Clock: clk, Queue: q, Mapping: &Mapping{Inputs: testInputs}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, src := range []string{"panic-teller-1", "panic-vault", "smoke-hall"} {
		tx.Report(engine.Report{ID: fmt.Sprintf("r.v%d", i), Playbook: "robbery", Variant: "armed", Event: engine.EventRaised, Source: src})
	}
	waitFor(t, "three events stored", func() bool { return q.Len() == 3 })
	tx.Close()
	q.Close()

	rc.SetSilent(false)
	q, err = OpenBoltQueue(filepath.Join(dir, "arc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	tx, err = New(Options{Account: "1234", Paths: paths, AckTimeout: time.Second, Clock: clk, Queue: q})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	waitFor(t, "backlog ACKed", func() bool { return q.Len() == 0 && len(rc.events()) == 3 })
	if got := rc.events(); !slices.Equal(got, []string{"#1234|1122 01 001", "#1234|1122 01 002", "#1234|1122 01 003"}) {
		t.Errorf("backlog arrived as %q", got)
	}
}

// TestPressToAckLatency measures 200 robbery presses, encrypted (AES-256),
// from the hand-off to the ACK over loopback TCP. It prints the figures
// and asserts nothing about time.
func TestPressToAckLatency(t *testing.T) {
	key := bytes.Repeat([]byte{3}, 32)
	rc := startReceiver(t, "tcp", key)
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lat []time.Duration
	done := make(chan struct{}, 200)
	tx, _, _ := newTx(t, clock.Real{}, key, []Path{{Name: "primary", Network: "tcp", Addr: rc.addr, FailAfter: time.Hour}},
		func(o *Options) {
			o.AckTimeout = 5 * time.Second
			o.OnAck = func(ev Event, _ string, _ time.Duration) {
				mu.Lock()
				lat = append(lat, time.Since(sent[ev.ID]))
				mu.Unlock()
				done <- struct{}{}
			}
		})
	for i := range 200 {
		id := fmt.Sprintf("r%d.v1", i)
		mu.Lock()
		sent[id] = time.Now()
		mu.Unlock()
		tx.Report(engine.Report{ID: id, Playbook: "robbery", Variant: "armed", Event: engine.EventRaised, Source: "panic-teller-1"})
		select { // one press at a time: the latency of a press, not of a queue
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("press %d not ACKed", i)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("press -> ACK over DC-09 (AES-256, TCP loopback, bbolt fsync included), %d presses: p50 %v  p99 %v  max %v",
		len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
}

// TestPrimaryKilledToTroubleTime measures, on the real clock, the time
// from killing the primary receiver to the path-failed trouble, with a
// short supervision (poll 200 ms, fail after 400 ms). It prints it.
func TestPrimaryKilledToTroubleTime(t *testing.T) {
	primary := startReceiver(t, "tcp", nil)
	backup := startReceiver(t, "tcp", nil)
	failed := make(chan time.Time, 1)
	newTx(t, clock.Real{}, nil, []Path{
		{Name: "primary", Network: "tcp", Addr: primary.addr, PollInterval: 200 * time.Millisecond, FailAfter: 400 * time.Millisecond},
		{Name: "backup", Network: "tcp", Addr: backup.addr, PollInterval: 200 * time.Millisecond, FailAfter: 400 * time.Millisecond},
	}, func(o *Options) {
		o.AckTimeout = 100 * time.Millisecond
		o.OnPathState = func(p string, s PathState, _ string) {
			if p == "primary" && s == PathFailed {
				select {
				case failed <- time.Now():
				default:
				}
			}
		}
	})
	waitFor(t, "a first poll ACKed", func() bool { return len(primary.answers()) > 0 })
	killed := time.Now()
	primary.cancel() // listener and connections closed: the receiver is gone
	select {
	case at := <-failed:
		t.Logf("primary receiver killed -> path-failed trouble: %v (poll 200ms, fail after 400ms, ACK timeout 100ms)", at.Sub(killed))
	case <-time.After(20 * time.Second):
		t.Fatal("no trouble after the primary was killed")
	}
}

// value reads a counter or gauge.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// TestBackupTakesPrimaryTimesOncePrimaryFailed: in a dual-path category
// the secondary path is supervised slowly (DP2: 25 h) while the primary
// is up; once the primary has failed, the backup is all there is and
// takes the primary's times (DP2: 30 min), so its own failure is reported
// within the primary's reporting time, not 25 h later.
func TestBackupTakesPrimaryTimesOncePrimaryFailed(t *testing.T) {
	start := time.Now()
	clk := clock.NewFake(start)
	primary := startReceiver(t, "tcp", nil, clk)
	backup := startReceiver(t, "tcp", nil, clk)
	const reporting = 30 * time.Minute
	tx, _, _ := newTx(t, clk, nil, []Path{
		{Name: "primary", Network: "tcp", Addr: primary.addr, PollInterval: reporting / 4, FailAfter: reporting / 2},
		{Name: "backup", Network: "tcp", Addr: backup.addr, PollInterval: 25 * time.Hour / 4, FailAfter: 25 * time.Hour / 2,
			PollIntervalAlone: reporting / 4, FailAfterAlone: reporting / 2},
	})
	primary.SetSilent(true)
	step := func() {
		clk.Advance(time.Minute)
		// let any poll this minute finish before time moves on
		waitFor(t, "polls settled", func() bool {
			return !tx.paths[0].pollDue.Load() && !tx.paths[1].pollDue.Load() && tx.idle()
		})
	}
	for i := 0; i < 60 && tx.State("primary") != PathFailed; i++ {
		step()
	}
	if tx.State("primary") != PathFailed {
		t.Fatal("primary never failed")
	}
	waitFor(t, "backup polled at once when the primary failed", func() bool { return tx.paths[1].polls.Load() > 0 })
	lastAck := clk.Now()
	backup.SetSilent(true)
	for i := 0; i < 60 && tx.State("backup") != PathFailed; i++ {
		step()
	}
	if got := tx.State("backup"); got != PathFailed {
		t.Fatalf("backup %v %v after it went silent, want failed within the primary's reporting time %v", got, clk.Now().Sub(lastAck), reporting)
	}
	if d := clk.Now().Sub(lastAck); d > reporting {
		t.Errorf("backup failure noticed %v after its last ACK, want within %v", d, reporting)
	}
}

// failingQueue is a Queue whose disk has failed.
type failingQueue struct{}

func (failingQueue) Push(Event) (uint64, error) { return 0, fmt.Errorf("disk full") }
func (failingQueue) Pending() ([]Event, error)  { return nil, nil }
func (failingQueue) Retire(uint64) error        { return nil }
func (failingQueue) Len() int                   { return 0 }

// TestQueueFailureStillSendsAndRaisesTrouble: when the queue cannot store
// an event, it is still sent from memory (never dropped) and the trouble
// is raised, so the center knows a crash now would lose it.
func TestQueueFailureStillSendsAndRaisesTrouble(t *testing.T) {
	rc := startReceiver(t, "tcp", nil)
	var mu sync.Mutex
	var troubles []bool
	tx, err := New(Options{Account: "1234", Paths: []Path{{Name: "primary", Network: "tcp", Addr: rc.addr, FailAfter: time.Hour}},
		AckTimeout: time.Second, Queue: failingQueue{}, Mapping: &Mapping{Inputs: testInputs},
		OnQueueTrouble: func(active bool, _ string) { mu.Lock(); troubles = append(troubles, active); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	tx.Report(engine.Report{ID: "r.v1", Playbook: "robbery", Variant: "armed", Event: engine.EventRaised, Source: "panic-teller-1"})
	waitFor(t, "robbery at the receiver", func() bool { return len(rc.events()) == 1 })
	mu.Lock()
	defer mu.Unlock()
	if len(troubles) != 1 || !troubles[0] {
		t.Errorf("queue trouble calls %v, want one raise", troubles)
	}
}

// TestUndeliveredEventRaisesTrouble: when no receiver takes an event the
// trouble is raised (the daemon sends it to the center on MQTT), and it
// clears once the event is delivered.
func TestUndeliveredEventRaisesTrouble(t *testing.T) {
	rc := startReceiver(t, "tcp", nil)
	rc.SetSilent(true)
	var mu sync.Mutex
	var calls []bool
	tx, q, _ := newTx(t, clock.Real{}, nil, []Path{{Name: "primary", Network: "tcp", Addr: rc.addr, FailAfter: time.Hour}},
		func(o *Options) {
			o.AckTimeout = 100 * time.Millisecond
			o.OnUndelivered = func(active bool, _ string) { mu.Lock(); calls = append(calls, active); mu.Unlock() }
		})
	tx.Report(engine.Report{ID: "r.v1", Playbook: "robbery", Variant: "armed", Event: engine.EventRaised, Source: "panic-teller-1"})
	waitFor(t, "undelivered trouble", func() bool { mu.Lock(); defer mu.Unlock(); return len(calls) == 1 })
	rc.SetSilent(false)
	waitFor(t, "robbery delivered", func() bool { return q.Len() == 0 && len(rc.events()) == 1 })
	waitFor(t, "trouble cleared", func() bool { mu.Lock(); defer mu.Unlock(); return len(calls) == 2 })
	mu.Lock()
	defer mu.Unlock()
	if !calls[0] || calls[1] {
		t.Errorf("calls %v, want [true false]", calls)
	}
}

// TestSequenceContinuesAfterRestart: a restarted transmitter does not
// start its sequence again at 0001, which a receiver could drop as a
// repeat of the message it ACKed before the restart.
func TestSequenceContinuesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	rc := startReceiver(t, "tcp", nil)
	paths := []Path{{Name: "primary", Network: "tcp", Addr: rc.addr, FailAfter: time.Hour}}
	run := func(n int) {
		q, err := OpenBoltQueue(filepath.Join(dir, "arc.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		tx, err := New(Options{Account: "1234", Paths: paths, AckTimeout: time.Second, Queue: q})
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		before := len(rc.events())
		for i := range n {
			tx.Send(Test(CIDManualTest, time.Now().Add(time.Duration(i))))
		}
		waitFor(t, "events ACKed", func() bool { return len(rc.events()) == before+n })
	}
	run(3)
	run(1)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var seqs []int
	for _, r := range rc.got {
		if r.Event != nil {
			seqs = append(seqs, r.Frame.Seq)
		}
	}
	if len(seqs) != 4 || seqs[3] <= seqs[2] {
		t.Errorf("sequences %v: the restarted transmitter went back", seqs)
	}
}

// TestEventStoredWhileHeadAwaitsAck: an event handed off while the head of
// the queue waits for a receiver that does not answer is stored at once,
// not after that wait. The journal commits the same report on its own
// goroutine within milliseconds; a crash (SIGKILL, power cut) during the
// wait must not leave a report in the journal that the DC-09 lane never
// stored (§3.5: nothing is lost). The wait here is a minute, so only a
// store that does not wait for it can pass.
func TestEventStoredWhileHeadAwaitsAck(t *testing.T) {
	rc := startReceiver(t, "tcp", nil)
	rc.SetSilent(true) // takes the frame, never answers
	paths := []Path{{Name: "primary", Network: "tcp", Addr: rc.addr, FailAfter: time.Hour}}
	tx, q, _ := newTx(t, clock.NewFake(time.Now()), nil, paths, func(o *Options) { o.AckTimeout = time.Minute })
	defer rc.cancel() // before tx.Close: the exchange ends at once
	tx.Report(engine.Report{ID: "a.v1", Playbook: "robbery", Variant: "armed", Event: engine.EventRaised, Source: "panic-teller-1"})
	waitFor(t, "the first event stored and in flight", func() bool { return q.Len() == 1 && !tx.idle() })
	tx.Report(engine.Report{ID: "b.v1", Playbook: "fire", Event: engine.EventRaised, Source: "smoke-hall"})
	waitFor(t, "the second event stored while the first awaits its ACK", func() bool { return q.Len() == 2 })
	evs, err := q.Pending()
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].ID != "a.v1" || evs[1].ID != "b.v1" {
		t.Errorf("queue holds %+v, want a.v1 then b.v1", evs)
	}
}

// TestEveryReportHandedOffMovesTheMark: the lane's report mark follows
// every report handed off, also those with nothing to send on DC-09 (a
// step), so a restart hands the lane again only what it never took.
func TestEveryReportHandedOffMovesTheMark(t *testing.T) {
	rc := startReceiver(t, "tcp", nil)
	tx, q, _ := newTx(t, nil, nil, []Path{{Name: "primary", Network: "tcp", Addr: rc.addr, FailAfter: time.Hour}})
	at := time.Now()
	tx.Report(engine.Report{ID: "i.v1", Seq: 4, Incident: "i", Playbook: "robbery", Source: "panic-1", Event: engine.EventRaised, Created: at})
	tx.Report(engine.Report{ID: "i.v2", Seq: 5, Incident: "i", Playbook: "robbery", Event: engine.EventStep, Created: at})
	waitFor(t, "the mark at the step", func() bool {
		n, ok, err := q.ReportMark()
		return err == nil && ok && n == 5
	})
	waitFor(t, "the hold-up at the receiver", func() bool { return len(rc.events()) == 1 })
}
