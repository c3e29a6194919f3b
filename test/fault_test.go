//go:build fault

package test

// Fault tests: the whole hallguard binary against Debian's mosquitto
// (configs/mosquitto/mosquitto.conf), with the broker SIGKILLed, the daemon
// SIGKILLed, the state directory full, and the journal damaged. Run them
// with `make fault` (root: the disk-full test mounts a tmpfs; apt-get
// install mosquitto). Each test logs sent, received, duplicates and lost;
// lost must be 0.
//
// "Sent" is always what the daemon made: the "report" records of its
// journal, read back after the run. "Received" is what the monitoring
// center — the collector, a persistent-session QoS 1 subscriber — got.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/daemon/journal"
	"github.com/hallguard/hallguard/mqtt/command"
)

func faultRandDur(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}

func faultSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	return seed
}

// TestFaultBrokerRestarts SIGKILLs mosquitto 20 times (up 0.3–2 s, down
// 0.3–1.5 s, restarted on the same port) while a driver keeps raising and
// moving incidents (sim presses always, signed commands while the broker is
// up), then checks that every report of the journal reached the center.
//
// Why the tap. QoS 1 is hop by hop: mosquitto's PUBACK means mosquitto has
// the message, in memory (persistence false). A SIGKILLed mosquitto loses
// what it acknowledged and had not yet written to the collector, and a
// restarted one has forgotten the collector's session until it subscribes
// again. Those losses are the broker's, and no publisher can prevent them;
// persistence true does not either (it saves every autosave_interval, not
// per message). So the test makes the broker's acknowledgement mean what
// the center needs, without changing hallguard or mosquitto: hallguard
// connects through a relay (faultTap) that
//   - admits hallguard only to a broker generation on which the collector's
//     subscription is confirmed (SUBACK), closing the resubscribe window;
//   - relays mosquitto's PUBACK for an alerts/ publish only once the
//     collector holds that report id — if mosquitto dies first, hallguard
//     never sees the PUBACK and must send the report again;
//   - records every PUBACK mosquitto sent, per report id and publish
//     (alerts/ and incidents/), as evidence independent of the daemon's
//     own bookkeeping.
//
// What is proven, with 20 broker kills mid-stream:
//   - lost = journal ids − collector ids = ∅: hallguard resends every
//     report until it is acknowledged, across connections, with the same
//     id; so a center behind a broker that acknowledges only what it
//     delivered receives everything;
//   - every journal report got mosquitto's PUBACK on both its alerts/ and
//     its incidents/ publish (seen on the wire, not taken from the daemon);
//   - no report reached the center that the journal does not hold, and
//     every report the daemon logged is in the journal;
//   - duplicates carry the same id and content, and redelivered: true;
//   - per incident, the first copies arrive in version order, without gaps;
//   - retained incidents/<id> on the final broker: the latest version for
//     every incident still open (hallguard republishes them on connect) and
//     for every incident whose latest report was acknowledged by the final
//     broker; never a stale version. (Incidents resolved on an earlier
//     broker generation have no retained message left on a non-persistent
//     broker — that is not checked, and cannot be.)
//
// Not proven, because it is not so: that a SIGKILLed, non-persistent
// mosquitto delivers everything it acknowledged. The log's "never relayed"
// count is how often it acknowledged a report and died before the center
// had it; hallguard, not seeing the PUBACK, sent each of them again.
func TestFaultBrokerRestarts(t *testing.T) {
	began := time.Now()
	seed := faultSeed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	mq := startFaultMosquitto(t)
	var gen atomic.Int64
	gen.Store(1)
	col := newFaultCollector(t, mq.addr(), gen.Load)
	tp := newFaultTap(t, mq.addr(), col)
	tp.open(1)
	dir := t.TempDir()
	cfg := writeFaultConfig(t, dir, "tcp://"+tp.addr(), "")
	h := newFaultHall(t, cfg, filepath.Join(dir, "state"))
	h.start(true)
	fc := newFaultCommander(t, mq.addr())
	load := startFaultLoad(h, fc, seed)
	t.Cleanup(load.halt)

	const restarts = 20
	var downTotal time.Duration
	bursts := 0
	for i := 1; i <= restarts; i++ {
		time.Sleep(faultRandDur(rng, 300*time.Millisecond, 2*time.Second))
		// Half of the kills land in a burst of report updates: as soon as
		// the center has the first of them, or 0–30 ms after.
		if faultMaybeBurst(rng, h, fc, col, strconv.Itoa(i), map[string]string{}) {
			bursts++
		}
		tp.shut()
		mq.kill()
		down := time.Now()
		time.Sleep(faultRandDur(rng, 300*time.Millisecond, 1500*time.Millisecond))
		g := gen.Add(1)
		mq.start()
		col.waitSubscribed(g)
		tp.open(g)
		downTotal += time.Since(down)
	}
	finalGen := gen.Load()
	time.Sleep(2 * time.Second) // a little more load on the stable broker
	load.halt()
	storm := time.Since(began)

	faultDrain(t, h, col)
	retainedChecked := faultCheckRetained(t, h, mq.addr(), tp, finalGen)
	h.stop()

	sent := h.fileReports()
	got, bad := col.snapshot()
	res := faultCheckMQTT(t, "", sent, got, bad)
	unacked := 0
	for _, id := range faultIDs(sent) {
		if a := tp.wireAcks(id); len(a.alertGens) == 0 || len(a.incidentGens) == 0 {
			if unacked++; unacked <= 5 {
				t.Errorf("report %s: mosquitto's PUBACKs seen on the wire: alerts/ %v, incidents/ %v", id, a.alertGens, a.incidentGens)
			}
		}
	}
	inJournal := map[string]bool{}
	for _, id := range faultIDs(sent) {
		inJournal[id] = true
	}
	logged := faultLoggedReports(h.logs())
	notJournalled := 0
	for _, id := range logged {
		if !inJournal[id] {
			notJournalled++
			t.Errorf("report %s was made (logged) but is not in the journal", id)
		}
	}
	if len(logged) != len(sent) {
		t.Errorf("%d reports logged, %d in the journal", len(logged), len(sent))
	}
	if res.sent < 200 {
		t.Errorf("only %d reports made: the load did not load", res.sent)
	}
	tp.mu.Lock()
	accepted, refused, held, withheld := tp.accepted, tp.refused, tp.held, tp.withheld
	tp.mu.Unlock()
	t.Logf("broker restarts: %d SIGKILLs of mosquitto (%d in a burst of report updates), %.1fs down in total, storm %.1fs; driver: %d presses, %d commands answered, %d unanswered",
		restarts, bursts, downTotal.Seconds(), storm.Seconds(), load.presses.Load(), load.commands.Load(), load.unanswered.Load())
	t.Logf("broker restarts: hallguard connections admitted %d, refused %d (broker down or center not yet subscribed); %d PUBACKs held until the center had the report, %d never relayed (mosquitto acknowledged the report, the connection died before the center had it: hallguard sent it again)",
		accepted, refused, held, withheld)
	t.Logf("broker restarts: %s; %d reports not acknowledged on the wire; %d retained incidents/ checked",
		res, unacked, retainedChecked)
}

// faultCheckRetained subscribes afresh to incidents/+ on the final broker and
// waits until the retained message of every incident that must have one
// holds its latest journal version, and none holds a stale one. It returns
// how many incidents it checked.
func faultCheckRetained(t *testing.T, h *faultHall, broker string, tp *faultTap, finalGen int64) int {
	t.Helper()
	sub := subscribe(t, broker, faultRoot+"/incidents/+")
	deadline := time.Now().Add(time.Minute)
	for {
		latest := map[string]faultJournalReport{}
		for _, r := range h.apiReports() {
			if r.Version > latest[r.Incident].Version {
				latest[r.Incident] = r
			}
		}
		retained := map[string]int{}
		for _, m := range sub.all() {
			var p struct {
				Incident string `json:"incident"`
				Version  int    `json:"version"`
			}
			if json.Unmarshal(m.Payload, &p) == nil {
				retained[p.Incident] = p.Version
			}
		}
		var problems []string
		checked := 0
		for inc, r := range latest {
			open := engine.State(r.State) == engine.StateActive || engine.State(r.State) == engine.StateAcknowledged
			want := open || slices.Contains(tp.wireAcks(r.ID).incidentGens, finalGen)
			v, ok := retained[inc]
			switch {
			case ok && v != r.Version:
				problems = append(problems, fmt.Sprintf("incidents/%s retains v%d, the journal's latest is v%d (%s)", inc, v, r.Version, r.State))
			case want && !ok:
				problems = append(problems, fmt.Sprintf("incidents/%s has no retained report, want v%d (%s)", inc, r.Version, r.State))
			}
			if want {
				checked++
			}
		}
		if len(problems) == 0 {
			return checked
		}
		if time.Now().After(deadline) {
			slices.Sort(problems)
			for _, p := range problems[:min(10, len(problems))] {
				t.Error(p)
			}
			return checked
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestFaultDaemonKills SIGKILLs hallguard at 20 random points while a
// driver raises and moves incidents (sim presses and signed commands), and
// restarts it each time on the same state directory; mosquitto stays up,
// so the center's persistent session never loses a message and everything
// the broker acknowledged reaches it.
//
// The final journal (it survives the kills) is "sent". Proven: every
// report in it reached the center (lost = ∅), nothing reached the center
// that is not in it (nothing is sent before it is durable), duplicates keep
// their id and say redelivered: true, per incident the first copies arrive
// in version order without gaps, and every copy sent by a later process
// than the one that made the report (its sent_at after that process
// started) says redelivered: true. Reports a killed process had made but
// not yet committed are in no journal and were never sent: they are
// counted (the crash window before the group commit's fsync), not lost.
func TestFaultDaemonKills(t *testing.T) {
	began := time.Now()
	seed := faultSeed(t)
	rng := rand.New(rand.NewPCG(seed, 2))
	mq := startFaultMosquitto(t)
	col := newFaultCollector(t, mq.addr(), func() int64 { return 1 })
	dir := t.TempDir()
	cfg := writeFaultConfig(t, dir, "tcp://"+mq.addr(), "")
	h := newFaultHall(t, cfg, filepath.Join(dir, "state"))
	fc := newFaultCommander(t, mq.addr())
	h.start(true)
	load := startFaultLoad(h, fc, seed)
	t.Cleanup(load.halt)

	const kills = 20
	bursts := 0
	burstCmds := map[string]string{} // report command id → incident
	for i := 1; i <= kills; i++ {
		time.Sleep(faultRandDur(rng, 300*time.Millisecond, 2500*time.Millisecond))
		// Half of the kills land in a burst: report updates (`report`
		// commands, one report each) on the open incidents, not waited for,
		// and the kill as soon as the center has the first of them, or 0–30
		// ms later: while they are being committed, sent and retired.
		if faultMaybeBurst(rng, h, fc, col, strconv.Itoa(i), burstCmds) {
			bursts++
		}
		h.kill()
		h.start(false)
	}
	time.Sleep(2 * time.Second)
	load.halt()
	faultDrain(t, h, col)
	h.stop()

	sent := h.fileReports()
	got, bad := col.snapshot()
	res := faultCheckMQTT(t, "", sent, got, bad)

	// Which process made each report, and the copies later ones sent.
	runs := h.allRuns()
	madeBy := func(at time.Time) int {
		k := 0
		for i, r := range runs {
			if !at.Before(r.started) {
				k = i
			}
		}
		return k
	}
	byID := map[string]faultJournalReport{}
	for _, s := range sent {
		byID[s.ID] = s
	}
	replayedCopies, notMarked := 0, 0
	for _, a := range got {
		s, ok := byID[a.ID]
		if !ok {
			continue
		}
		k := madeBy(s.Time)
		if k+1 < len(runs) && !a.SentAt.Before(runs[k+1].started) {
			replayedCopies++
			if !a.Redelivered {
				if notMarked++; notMarked <= 5 {
					t.Errorf("report %s made by run %d was sent again by a later run (sent_at %s) without redelivered: true",
						a.ID, runs[k].n, a.SentAt.Format(time.RFC3339Nano))
				}
			}
		}
	}
	replayedLogged, notDurable := 0, 0
	for i, r := range runs {
		logs := r.logs.String()
		for _, m := range faultReplayLog.FindAllStringSubmatch(logs, -1) {
			replayedLogged += faultAtoi(m[1])
		}
		for _, id := range faultLoggedReports(logs) {
			if _, ok := byID[id]; ok {
				continue
			}
			if i == len(runs)-1 {
				t.Errorf("report %s made by the last run (stopped cleanly) is not in the journal", id)
			}
			notDurable++
		}
	}
	// The center's view of the crash window: `report` commands of the
	// bursts answered "ok" on cmd/reply, against the update reports the
	// journal holds for their incidents. More ok answers than updates: the
	// center was told "ok" for a change whose report never became durable
	// (the reply is published before the report's group commit).
	okByInc, updByInc := map[string]int{}, map[string]int{}
	for id, inc := range burstCmds {
		if r, ok := fc.reply(id); ok && r.Result == "ok" {
			okByInc[inc]++
		}
	}
	for _, s := range sent {
		if engine.Event(s.Event) == engine.EventUpdate {
			updByInc[s.Incident]++
		}
	}
	okNoReport := 0
	for inc, n := range okByInc {
		okNoReport += max(0, n-updByInc[inc])
	}
	if res.sent < 200 {
		t.Errorf("only %d reports made: the load did not load", res.sent)
	}
	// README: seq is the "daemon-wide report sequence". Count the seq
	// values that more than one report carries (the engine starts again
	// at 1 in every process).
	idsBySeq := map[uint64]map[string]bool{}
	for _, s := range sent {
		if idsBySeq[s.ReportSeq] == nil {
			idsBySeq[s.ReportSeq] = map[string]bool{}
		}
		idsBySeq[s.ReportSeq][s.ID] = true
	}
	seqReused := 0
	for _, ids := range idsBySeq {
		if len(ids) > 1 {
			seqReused++
		}
	}
	t.Logf("daemon kills: %d report seq values carried by more than one report; %d commands answered ok whose report is in no journal", seqReused, okNoReport)
	if seqReused > 0 {
		t.Errorf("report seq reused across restarts by %d values: seq must keep increasing", seqReused)
	}
	if okNoReport > 0 {
		t.Errorf("%d commands were answered ok although the report they made is in no journal", okNoReport)
	}
	t.Logf("daemon kills: %d SIGKILLs of hallguard (%d in a burst of report updates), %d runs, %.1fs; driver: %d presses, %d commands answered, %d unanswered",
		kills, bursts, len(runs), time.Since(began).Seconds(), load.presses.Load(), load.commands.Load(), load.unanswered.Load())
	t.Logf("daemon kills: %s", res)
	t.Logf("daemon kills: redelivered after restarts: %d reports replayed from the outbox (daemon logs), %d copies sent by a later run than made them, all marked redelivered; %d reports made but not yet committed when killed (never sent)",
		replayedLogged, replayedCopies, notDurable)
}

// TestFaultDiskFull runs hallguard with its state directory on a 512 KiB
// tmpfs, fills the tmpfs, and raises incidents: reports keep reaching the
// center from memory, the journal is degraded (metric and trouble) and the
// log says so once. Freeing the space clears the trouble at the next retry
// (every 10 s) and the backlog reaches the disk: verify passes and every
// report is in the journal after the daemon stops.
func TestFaultDiskFull(t *testing.T) {
	mq := startFaultMosquitto(t)
	col := newFaultCollector(t, mq.addr(), func() int64 { return 1 })
	dir := t.TempDir()
	mnt := filepath.Join(dir, "state")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=512k,mode=0700"); err != nil {
		t.Fatalf("mount -t tmpfs -o size=512k tmpfs %s: %v (the fault tests need root)", mnt, err)
	}
	t.Cleanup(func() { // registered first: runs after the daemon has stopped
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("umount %s: %v; detaching", mnt, err)
			_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	cfg := writeFaultConfig(t, dir, "tcp://"+mq.addr(), "")
	h := newFaultHall(t, cfg, mnt)
	fc := newFaultCommander(t, mq.addr())
	h.start(true)
	playbooks := []string{"illness", "disturbance"}
	faultCycle(t, h, fc, "illness")
	if v := h.metric("hallguard_journal_degraded"); v != "0" {
		t.Fatalf("hallguard_journal_degraded = %q before the disk is full", v)
	}

	filler := filepath.Join(mnt, "filler")
	out, err := faultRun("dd", "if=/dev/zero", "of="+filler, "bs=4k")
	if err == nil || !strings.Contains(out, "No space left") {
		t.Fatalf("dd should fill the tmpfs: %v\n%s", err, out)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err != nil || st.Bavail != 0 {
		t.Fatalf("statfs after dd: %d blocks free, %v", st.Bavail, err)
	}

	// bbolt reuses pages it has written before: the first commits may still
	// fit. Raise incidents until one does not.
	before := len(faultLoggedReports(h.logs()))
	n := 0
	for h.metric("hallguard_journal_degraded") != "1" {
		if n == 30 {
			t.Fatalf("journal not degraded after %d incidents on a full tmpfs\n%s", n, faultTail(h.logs(), 40))
		}
		faultCycle(t, h, fc, playbooks[n%2])
		n++
	}
	degradedAfter := len(faultLoggedReports(h.logs())) - before
	for i := 0; i < 3; i++ {
		faultCycle(t, h, fc, playbooks[i%2])
	}
	// a panic press works without the disk too; the center resolves it
	if err := h.pulse("panic-teller-1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { return faultOpenIncident(h, "robbery") != "" }, "the robbery", nil)
	fc.mustSend(t, "resolve", command.Message{Incident: faultOpenIncident(h, "robbery")})

	whileFull := faultLoggedReports(h.logs())
	if missing := col.waitAll(whileFull, time.Minute); len(missing) > 0 {
		t.Errorf("disk full: %d reports did not reach the center, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
	for name, want := range map[string]string{
		"hallguard_journal_degraded":                                          "1",
		`hallguard_condition_active{class="trouble",kind="journal_degraded"}`: "1",
	} {
		if v := h.metric(name); v != want {
			t.Errorf("disk full: %s = %q, want %s", name, v, want)
		}
	}
	logs := h.logs()
	if c := strings.Count(logs, "cannot write the state directory"); c != 1 {
		t.Errorf("disk full: the degraded message is logged %d times, want once:\n%s", c, faultTail(logs, 40))
	}
	if c := strings.Count(logs, "msg=trouble kind=journal_degraded"); c != 1 {
		t.Errorf("disk full: trouble journal_degraded logged %d times, want once", c)
	}
	if c := strings.Count(logs, `msg="journal append"`); c != 0 {
		t.Errorf("disk full: %d journal append errors logged, want none (the store keeps the records)", c)
	}
	fullReports := len(whileFull) - before

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	waitFor(t, 90*time.Second, func() bool {
		return h.metric(`hallguard_condition_active{class="trouble",kind="journal_degraded"}`) == "0" &&
			h.metric("hallguard_journal_degraded") == "0"
	}, "the journal_degraded trouble to clear after the space was freed", nil)
	cleared := time.Since(freed)
	if !strings.Contains(h.logs(), `msg="trouble cleared" kind=journal_degraded`) {
		t.Errorf("no trouble cleared log for journal_degraded")
	}
	faultCycle(t, h, fc, "illness")
	h.waitOutboxEmpty(time.Minute)
	h.stop()

	db := filepath.Join(mnt, "hallguard.db")
	if out, code := h.journalCLI(db, "verify"); code != 0 || !strings.Contains(out, ": ok: ") {
		t.Errorf("journal verify after the disk was freed: exit %d\n%s", code, out)
	}
	sent := h.fileReports()
	got, bad := col.snapshot()
	res := faultCheckMQTT(t, "", sent, got, bad)
	inJournal := map[string]bool{}
	for _, s := range sent {
		inJournal[s.ID] = true
	}
	missingOnDisk := 0
	for _, id := range faultLoggedReports(h.logs()) {
		if !inJournal[id] {
			if missingOnDisk++; missingOnDisk <= 5 {
				t.Errorf("report %s is not in the journal after the disk was freed", id)
			}
		}
	}
	t.Logf("disk full: degraded after %d more reports on the full tmpfs; %d reports made while full, all at the center from memory; trouble cleared %.1fs after the space was freed (retry every 10s)",
		degradedAfter, fullReports, cleared.Seconds())
	t.Logf("disk full: %s; %d reports missing from the journal afterwards", res, missingOnDisk)
}

func faultOpenIncident(h *faultHall, playbook string) string {
	incs, _ := h.incidents()
	for _, inc := range incs {
		if inc.Playbook == playbook && (inc.State == engine.StateActive || inc.State == engine.StateAcknowledged) {
			return inc.ID
		}
	}
	return ""
}

func faultRun(name string, args ...string) (string, error) {
	var b bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	return b.String(), err
}

// TestFaultCorruption damages a journal written by a real run: one byte of
// one record's stored value flipped (in an old record, and in one of the
// last 64 that Open checks), and the file truncated to half.
//   - `hallguard journal verify` exits 1 and names the flipped record's seq;
//   - an old damaged record: the daemon starts normally (Open checks only
//     the tail) and /api/journal/verify still reports the break;
//   - a damaged tail or a truncated file: the daemon starts, with the file
//     moved aside (kept, byte for byte), a fresh journal that verifies and
//     begins with the recovery record, and journal_recovered trouble; the
//     next start is normal (no crash loop, no second recovery).
func TestFaultCorruption(t *testing.T) {
	mq := startFaultMosquitto(t)
	dir := t.TempDir()
	cfg := writeFaultConfig(t, dir, "tcp://"+mq.addr(), "")
	fc := newFaultCommander(t, mq.addr())
	h := newFaultHall(t, cfg, filepath.Join(dir, "state"))
	h.start(true)
	reports := 0
	for i := 0; i < 12; i++ {
		faultCycle(t, h, fc, []string{"illness", "disturbance"}[i%2])
	}
	h.waitOutboxEmpty(time.Minute)
	h.stop()
	db := filepath.Join(h.stateDir, "hallguard.db")
	reports = len(h.fileReports())
	if out, code := h.journalCLI(db, "verify"); code != 0 {
		t.Fatalf("journal verify of the sound file: exit %d\n%s", code, out)
	}
	last := faultLastSeq(t, db)
	if last < 64+20 {
		t.Fatalf("only %d records: need more than the 64 Open checks", last)
	}
	pristine, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	trouble := `hallguard_condition_active{class="trouble",kind="journal_recovered"}`

	// copyState makes a state directory holding the journal file b.
	copyState := func(name string, b []byte) (string, string) {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(d, "hallguard.db")
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return d, f
	}
	verifyBroken := func(file string, seq uint64) {
		t.Helper()
		out, code := h.journalCLI(file, "verify")
		if code != 1 || !strings.Contains(out, fmt.Sprintf("BROKEN at record %d:", seq)) {
			t.Errorf("journal verify of a file with record %d damaged: exit %d, want 1 naming record %d:\n%s", seq, code, seq, out)
		} else {
			t.Logf("corruption: journal verify exit 1: %s", strings.TrimSpace(out))
		}
	}
	apiVerify := func(hh *faultHall) journal.VerifyResult {
		t.Helper()
		b, err := hh.get("/api/journal/verify")
		if err != nil {
			t.Fatal(err)
		}
		var res journal.VerifyResult
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatalf("/api/journal/verify: %v: %s", err, b)
		}
		return res
	}
	corruptFiles := func(d string) []string {
		m, _ := filepath.Glob(filepath.Join(d, "hallguard.db.corrupt-*"))
		return m
	}
	// recovered checks a daemon that had to replace its file, then starts
	// it once more.
	recovered := func(name, d string, damaged []byte) {
		t.Helper()
		hh := newFaultHall(t, cfg, d)
		hh.start(true)
		if v := hh.metric(trouble); v != "1" {
			t.Errorf("%s: %s = %q, want 1", name, trouble, v)
		}
		if !strings.Contains(hh.logs(), "journal was damaged and has been moved aside") {
			t.Errorf("%s: no recovery in the log:\n%s", name, faultTail(hh.logs(), 20))
		}
		moved := corruptFiles(d)
		if len(moved) != 1 {
			t.Fatalf("%s: moved-aside files %v, want one", name, moved)
		}
		if b, err := os.ReadFile(moved[0]); err != nil || !bytes.Equal(b, damaged) {
			t.Errorf("%s: %s is not the damaged file byte for byte (%v)", name, moved[0], err)
		}
		if res := apiVerify(hh); res.FirstBad != 0 || res.Records == 0 {
			t.Errorf("%s: the new journal: verify %+v", name, res)
		}
		b, err := hh.get("/api/journal/export?limit=1")
		if err != nil {
			t.Fatal(err)
		}
		var first struct {
			Seq  uint64 `json:"seq"`
			Kind string `json:"kind"`
			Data struct {
				Condition string `json:"condition"`
				MovedTo   string `json:"moved_to"`
			} `json:"data"`
		}
		if err := json.Unmarshal(bytes.TrimSpace(b), &first); err != nil || first.Seq != 1 || first.Kind != "trouble" ||
			first.Data.Condition != "journal_recovered" || first.Data.MovedTo != moved[0] {
			t.Errorf("%s: first record of the new journal: %s (%v)", name, b, err)
		}
		faultCycle(t, hh, fc, "illness") // it works on
		hh.waitOutboxEmpty(time.Minute)
		hh.stop()
		hh.start(true) // and starts again normally
		if v := hh.metric(trouble); v == "1" {
			t.Errorf("%s: journal_recovered raised again at the next start", name)
		}
		if m := corruptFiles(d); len(m) != 1 {
			t.Errorf("%s: after a second start: moved-aside files %v", name, m)
		}
		hh.stop()
		if out, code := hh.journalCLI(filepath.Join(d, "hallguard.db"), "verify"); code != 0 {
			t.Errorf("%s: verify of the new journal: exit %d\n%s", name, code, out)
		}
		t.Logf("corruption: %s: moved aside to %s, journal_recovered raised, fresh journal verifies, next start normal", name, filepath.Base(moved[0]))
	}

	// (a) an old record: outside the tail Open checks.
	oldSeq := uint64(10)
	aDir, aDB := copyState("old", pristine)
	faultFlipByte(t, aDB, oldSeq)
	verifyBroken(aDB, oldSeq)
	ha := newFaultHall(t, cfg, aDir)
	ha.start(true)
	if res := apiVerify(ha); res.FirstBad != oldSeq {
		t.Errorf("old record damaged: /api/journal/verify = %+v, want FirstBad %d", res, oldSeq)
	} else {
		t.Logf("corruption: old record %d damaged: daemon started normally; /api/journal/verify: FirstBad %d (%s)", oldSeq, res.FirstBad, res.Reason)
	}
	if v := ha.metric(trouble); v == "1" {
		t.Errorf("old record damaged: journal_recovered raised, but Open checks only the tail")
	}
	if m := corruptFiles(aDir); len(m) != 0 {
		t.Errorf("old record damaged: file moved aside: %v", m)
	}
	faultCycle(t, ha, fc, "illness")
	ha.waitOutboxEmpty(time.Minute)
	ha.stop()
	verifyBroken(aDB, oldSeq) // appended to, never rewritten

	// (b) a record in the checked tail.
	tailSeq := last - 3
	bDir, bDB := copyState("tail", pristine)
	faultFlipByte(t, bDB, tailSeq)
	verifyBroken(bDB, tailSeq)
	damaged, err := os.ReadFile(bDB)
	if err != nil {
		t.Fatal(err)
	}
	recovered(fmt.Sprintf("record %d of %d damaged", tailSeq, last), bDir, damaged)

	// (c) truncated to half.
	half := pristine[:len(pristine)/2]
	cDir, _ := copyState("truncated", half)
	recovered(fmt.Sprintf("truncated from %d to %d bytes", len(pristine), len(half)), cDir, half)
	t.Logf("corruption: journal of %d records (%d reports) from a real run", last, reports)
}

// faultLastSeq reads the last journal seq straight from the bbolt file.
func faultLastSeq(t *testing.T, db string) uint64 {
	t.Helper()
	bdb, err := bolt.Open(db, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	var last uint64
	err = bdb.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("journal")) // daemon/journal/open.go bJournal
		if b == nil {
			return fmt.Errorf("no journal bucket")
		}
		k, _ := b.Cursor().Last()
		for _, c := range k {
			last = last<<8 | uint64(c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return last
}

// faultFlipByte changes one byte of journal record seq's stored value, in
// a bbolt write transaction: a letter of the first key of its data, so the
// value stays valid JSON and only the hash chain can tell.
func faultFlipByte(t *testing.T, db string, seq uint64) {
	t.Helper()
	bdb, err := bolt.Open(db, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	key := make([]byte, 8)
	for i := 0; i < 8; i++ {
		key[7-i] = byte(seq >> (8 * i))
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("journal"))
		if b == nil {
			return fmt.Errorf("no journal bucket")
		}
		v := b.Get(key)
		if v == nil {
			return fmt.Errorf("no record %d", seq)
		}
		v = bytes.Clone(v)
		i := bytes.Index(v, []byte(`"data":{"`))
		if i < 0 {
			return fmt.Errorf("record %d: no data object: %s", seq, v)
		}
		i += len(`"data":{"`)
		v[i] ^= 0x01
		return b.Put(key, v)
	})
	if err != nil {
		t.Fatal(err)
	}
}
