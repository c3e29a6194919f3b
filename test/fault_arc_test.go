//go:build fault

package test

// Fault tests of the DC-09 path (issue #16), beside MQTT: the reference
// receiver (`hallguard arc listen`, a real process) SIGKILLed and started
// again on the same port 20 times, and the daemon SIGKILLed 20 times, while
// the load driver of fault_test.go presses the panic button, the call point
// and the generic buttons and the center moves and resolves incidents with
// signed commands. Both paths must lose nothing.
//
// "Sent" on DC-09 is what the final journal's reports map to
// (arc.Mapping.Report, the daemon's own mapping): a playbook's opening is
// qualifier 1, its close qualifier 3. "Received" is what `arc listen`
// printed with "-> ACK". A Contact ID message carries no report id, so an
// event is identified by its key — format, code and zone (and, for SIA
// text events, the playbook) — and its place in that key's sequence: the
// load keeps at most one incident open per playbook, so a key's events
// alternate new, restore, new ... A copy that repeats the qualifier of the
// event matched last on its key is a duplicate (an ACK lost to a kill: the
// transmitter sends the head of its queue again); anything else must be
// the key's next event, so a restore before its new, or a gap, shows up as
// lost or unexpected.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/arc"
	"github.com/hallguard/hallguard/daemon"
	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
)

// startFaultARCListen runs `arc listen` with a key of its own.
func startFaultARCListen(t *testing.T) *arcListen {
	t.Helper()
	key := filepath.Join(t.TempDir(), "arc.key")
	if err := os.WriteFile(key, []byte(strings.Repeat("a7", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return startARCListen(t, key)
}

// faultARCEvent is the part of a DC-09 event that the receiver sees.
type faultARCEvent struct {
	Key       string // CID/<code>/<zone> or SIA/<zone>/<playbook>
	Qualifier int
	ID        string // the report id (expected events only)
	Gen       int    // receiver generation (received events only)
}

var (
	faultARCCID = regexp.MustCompile(`CID (new|restore) (\d{3}) .*area \d{2} zone (\d{3})`)
	faultARCSIA = regexp.MustCompile(`SIA-DCS (new|restore) zone (\d{3}) ("(?:[^"\\]|\\.)*")`)
)

func faultARCQual(s string) int {
	if s == "restore" {
		return arc.QualRestore
	}
	return arc.QualNew
}

// faultARCKey is the receiver-visible identity of an event's incident
// stream: format, code and zone, and for SIA text events the playbook.
func faultARCKey(ev arc.Event) string {
	if ev.Format == arc.IDSIA {
		pb, _, _ := strings.Cut(ev.Text, " ")
		return fmt.Sprintf("SIA/%03d/%s", ev.Zone, pb)
	}
	return fmt.Sprintf("CID/%03d/%03d", ev.Code, ev.Zone)
}

// faultARCReceived parses the ACKed events `arc listen` printed.
func faultARCReceived(lines []arcLine) []faultARCEvent {
	var out []faultARCEvent
	for _, l := range lines {
		if !strings.HasSuffix(l.text, "-> ACK") {
			continue
		}
		if m := faultARCCID.FindStringSubmatch(l.text); m != nil {
			code, _ := strconv.Atoi(m[2])
			zone, _ := strconv.Atoi(m[3])
			out = append(out, faultARCEvent{Key: faultARCKey(arc.Event{Format: arc.IDContactID, Code: code, Zone: zone}),
				Qualifier: faultARCQual(m[1]), Gen: l.gen})
			continue
		}
		if m := faultARCSIA.FindStringSubmatch(l.text); m != nil {
			zone, _ := strconv.Atoi(m[2])
			text, err := strconv.Unquote(m[3])
			if err != nil {
				text = m[3]
			}
			out = append(out, faultARCEvent{Key: faultARCKey(arc.Event{Format: arc.IDSIA, Zone: zone, Text: text}),
				Qualifier: faultARCQual(m[1]), Gen: l.gen})
		}
	}
	return out
}

// faultARCExpected maps the journal's reports with the daemon's own
// DC-09 mapping, in journal order: what the ARC must get.
func faultARCExpected(t *testing.T, h *faultHall, sent []faultJournalReport) []faultARCEvent {
	t.Helper()
	cfg, err := config.Load(h.config)
	if err != nil {
		t.Fatal(err)
	}
	o, err := daemon.ARCOptions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var evs []faultARCEvent
	seen := map[string]bool{}
	for _, r := range sent {
		if seen[r.ID] {
			continue
		}
		seen[r.ID] = true
		ev, ok := o.Mapping.Report(engine.Report{ID: r.ID, Incident: r.Incident, Version: r.Version, Event: engine.Event(r.Event),
			Playbook: r.Playbook, Variant: r.Variant, Source: r.Source, Drill: r.Drill})
		if !ok {
			continue
		}
		evs = append(evs, faultARCEvent{Key: faultARCKey(ev), Qualifier: ev.Qualifier, ID: ev.ID})
	}
	return evs
}

// faultARCDelivery compares the events the ARC must get with those it got.
type faultARCDelivery struct {
	sent, received, copies, duplicates int
	others                             int      // condition and test events (not counted in copies)
	lost                               []string // report ids
	unexpected                         []string
	problems                           []string
}

func (r faultARCDelivery) String() string {
	return fmt.Sprintf("sent %d, received %d (%d copies), duplicates %d, lost %d, unexpected %d; %d condition/test events besides",
		r.sent, r.received, r.copies, r.duplicates, len(r.lost), len(r.unexpected), r.others)
}

// faultARCAnalyse matches, per key, the received copies against the
// expected events in order (see the file comment).
func faultARCAnalyse(want, got []faultARCEvent) faultARCDelivery {
	res := faultARCDelivery{sent: len(want)}
	byKey := map[string][]faultARCEvent{}
	for _, w := range want {
		byKey[w.Key] = append(byKey[w.Key], w)
	}
	for k, ws := range byKey {
		for i := 1; i < len(ws); i++ {
			if ws[i].Qualifier == ws[i-1].Qualifier && len(res.problems) < 30 {
				// The duplicate rule needs new and restore to alternate.
				res.problems = append(res.problems, fmt.Sprintf("journal: %s: %s and %s both have qualifier %d: events of a key do not alternate",
					k, ws[i-1].ID, ws[i].ID, ws[i].Qualifier))
			}
		}
	}
	next := map[string]int{}
	for _, g := range got {
		ws, ok := byKey[g.Key]
		if !ok {
			res.others++ // a condition (trouble, test): not a report's event
			continue
		}
		res.copies++
		i := next[g.Key]
		switch {
		case i < len(ws) && ws[i].Qualifier == g.Qualifier:
			next[g.Key] = i + 1
			res.received++
		case i > 0 && ws[i-1].Qualifier == g.Qualifier:
			res.duplicates++
		default:
			res.unexpected = append(res.unexpected, fmt.Sprintf("%s q%d (receiver run %d, after %d of the key's %d events)", g.Key, g.Qualifier, g.Gen, i, len(ws)))
		}
	}
	for k, ws := range byKey {
		for _, w := range ws[next[k]:] {
			res.lost = append(res.lost, w.ID+" ("+k+")")
		}
	}
	sort.Strings(res.lost)
	return res
}

// writeFaultARCConfig is writeFaultConfig with the DC-09 path on: the
// receiver rx, encrypted, and the playbooks without a Contact ID sent as
// SIA text events, so every playbook of the load crosses the path.
func writeFaultARCConfig(t *testing.T, dir, broker string, rx *arcListen) string {
	t.Helper()
	return writeFaultConfig(t, dir, broker, fmt.Sprintf("arc:\n  account: \"4F39\"\n  key_file: %s\n  category: SP6\n  ack_timeout: 1s\n  retries: 1\n  unmapped: sia_text\n"+
		"  receivers:\n    - {name: primary, address: \"%s\", poll_interval: 1s, fail_after: 3s}\n", rx.keyFile, rx.addr))
}

// faultARCRig is a DC-09 fault test's setup: mosquitto and the center on
// MQTT, `arc listen` on DC-09, hallguard on both paths, and the load.
type faultARCRig struct {
	t    *testing.T
	h    *faultHall
	col  *faultCollector
	rx   *arcListen
	load *faultLoad
}

func startFaultARCRig(t *testing.T, seed uint64) *faultARCRig {
	t.Helper()
	mq := startFaultMosquitto(t)
	r := &faultARCRig{t: t, col: newFaultCollector(t, mq.addr(), func() int64 { return 1 }), rx: startFaultARCListen(t)}
	dir := t.TempDir()
	cfg := writeFaultARCConfig(t, dir, "tcp://"+mq.addr(), r.rx)
	r.h = newFaultHall(t, cfg, filepath.Join(dir, "state"))
	fc := newFaultCommander(t, mq.addr())
	r.h.start(true)
	r.load = startFaultLoad(r.h, fc, seed)
	t.Cleanup(r.load.halt)
	return r
}

// finish waits, the load halted, until both paths have nothing pending and
// the ARC holds every event the final journal maps to (ACK lines may still
// be on their way through the pipe), stops the daemon and judges both
// paths on the final journal.
func (r *faultARCRig) finish(unexpectedOK bool) (faultARCDelivery, faultDelivery) {
	t, h := r.t, r.h
	t.Helper()
	faultDrain(t, h, r.col)
	waitFor(t, 2*time.Minute, func() bool { return h.metric(`hallguard_arc_events_pending{path="primary"}`) == "0" },
		"the DC-09 queue to drain", nil)
	h.stop()
	sent := h.fileReports()
	want := faultARCExpected(t, h, sent)
	var arcRes faultARCDelivery
	deadline := time.Now().Add(30 * time.Second)
	for {
		arcRes = faultARCAnalyse(want, faultARCReceived(r.rx.lines()))
		if len(arcRes.lost) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	got, bad := r.col.snapshot()
	mqRes := faultCheckMQTT(t, "MQTT: ", sent, got, bad)
	faultARCCheck(t, arcRes, unexpectedOK)
	return arcRes, mqRes
}

// faultARCCheck is the DC-09 path's verdict: lost 0, every expected event
// in order per key, and enough of them that the load loaded.
func faultARCCheck(t *testing.T, res faultARCDelivery, unexpectedOK bool) {
	t.Helper()
	for _, p := range res.problems {
		t.Error("DC-09: " + p)
	}
	if len(res.lost) > 0 {
		t.Errorf("DC-09: LOST %d events, e.g. %v", len(res.lost), res.lost[:min(5, len(res.lost))])
	}
	if len(res.unexpected) > 0 && !unexpectedOK {
		t.Errorf("DC-09: %d copies out of order (neither the key's next event nor a repeat of its last), e.g. %v",
			len(res.unexpected), res.unexpected[:min(5, len(res.unexpected))])
	}
	if res.sent < 100 {
		t.Errorf("DC-09: only %d events made: the load did not load", res.sent)
	}
}

// TestFaultARCReceiverRestarts SIGKILLs `hallguard arc listen` 20 times
// (up 0.3–2 s, down 0.3–1.5 s, started again on the same port) while the
// load driver runs with MQTT up. Every event the final journal maps to
// DC-09 reaches the receiver at least once, in order per key (a new
// before its restore); every report reaches the MQTT center. Duplicates
// are the events whose ACK a kill swallowed.
func TestFaultARCReceiverRestarts(t *testing.T) {
	began := time.Now()
	seed := faultSeed(t)
	rng := rand.New(rand.NewPCG(seed, 3))
	r := startFaultARCRig(t, seed)
	rx, load := r.rx, r.load

	const restarts = 20
	var downTotal time.Duration
	for i := 1; i <= restarts; i++ {
		time.Sleep(faultRandDur(rng, 300*time.Millisecond, 2*time.Second))
		rx.kill()
		down := time.Now()
		time.Sleep(faultRandDur(rng, 300*time.Millisecond, 1500*time.Millisecond))
		rx.start()
		downTotal += time.Since(down)
	}
	time.Sleep(2 * time.Second) // a little more load on the stable receiver
	load.halt()
	storm := time.Since(began)

	arcRes, mqRes := r.finish(false)
	t.Logf("arc receiver restarts: %d SIGKILLs of arc listen, %.1fs down in total, storm %.1fs; driver: %d presses, %d commands answered, %d unanswered",
		restarts, downTotal.Seconds(), storm.Seconds(), load.presses.Load(), load.commands.Load(), load.unanswered.Load())
	t.Logf("arc receiver restarts: DC-09: %s", arcRes)
	t.Logf("arc receiver restarts: MQTT: %s", mqRes)
}

// TestFaultARCDaemonKills SIGKILLs hallguard 20 times under load (sim
// presses, signed commands) with both paths on and restarts it on the same
// state directory. Every event the final journal maps to DC-09 reaches the
// receiver at least once, in order per key; every report reaches the MQTT
// center. A report a killed process had sent on DC-09 but not yet
// committed to the journal is in no journal: the receiver's copy is
// counted as unexpected, not as an error (the DC-09 lane is durable in
// arc.db before it sends; the journal's group commit may come later).
func TestFaultARCDaemonKills(t *testing.T) {
	began := time.Now()
	seed := faultSeed(t)
	rng := rand.New(rand.NewPCG(seed, 4))
	r := startFaultARCRig(t, seed)
	h, load := r.h, r.load

	const kills = 20
	pressKills := 0
	for i := 1; i <= kills; i++ {
		time.Sleep(faultRandDur(rng, 300*time.Millisecond, 2500*time.Millisecond))
		// Half of the kills land 0–40 ms after a press of every button
		// (those whose playbook is open join it): while the raised
		// reports are committed to the journal and pushed to the DC-09
		// lane, each on its own goroutine.
		if rng.IntN(2) == 0 {
			sock := filepath.Join(h.stateDir, "sim.sock")
			for in := range faultLoadButtons {
				_, _ = faultSimSend(sock, "press "+in)
			}
			time.Sleep(faultRandDur(rng, 0, 40*time.Millisecond))
			pressKills++
		}
		h.kill()
		h.start(false)
	}
	time.Sleep(2 * time.Second)
	load.halt()
	storm := time.Since(began)

	arcRes, mqRes := r.finish(true)
	t.Logf("arc daemon kills: %d SIGKILLs of hallguard (%d just after a press of every button), %d runs, %.1fs; driver: %d presses, %d commands answered, %d unanswered",
		kills, pressKills, len(h.allRuns()), storm.Seconds(), load.presses.Load(), load.commands.Load(), load.unanswered.Load())
	t.Logf("arc daemon kills: DC-09: %s", arcRes)
	if len(arcRes.unexpected) > 0 {
		t.Logf("arc daemon kills: DC-09 copies not in the final journal (made by a killed run, not committed), e.g. %v", arcRes.unexpected[:min(5, len(arcRes.unexpected))])
	}
	t.Logf("arc daemon kills: MQTT: %s", mqRes)
}

// TestFaultARCAnalyseFindsLossAndOrder checks the DC-09 checker itself on
// made-up streams: a repeat is a duplicate, a missing event is lost, and a
// restore before its new is not taken for delivery.
func TestFaultARCAnalyseFindsLossAndOrder(t *testing.T) {
	ev := func(key string, q int, id string) faultARCEvent { return faultARCEvent{Key: key, Qualifier: q, ID: id} }
	const rob, fire = "CID/122/001", "CID/115/003"
	want := []faultARCEvent{ev(rob, 1, "a.v1"), ev(fire, 1, "b.v1"), ev(rob, 3, "a.v2"), ev(rob, 1, "c.v1"), ev(fire, 3, "b.v3")}
	cond := ev("CID/350/000", 1, "")
	for _, tc := range []struct {
		name                 string
		got                  []faultARCEvent
		dups, lost, unexpect int
	}{
		{"all once", []faultARCEvent{want[0], want[1], cond, want[2], want[3], want[4]}, 0, 0, 0},
		{"repeats", []faultARCEvent{want[0], want[0], want[1], want[2], want[2], want[3], want[4], want[4]}, 3, 0, 0},
		{"one lost", []faultARCEvent{want[0], want[1], want[2], want[4]}, 0, 1, 0},
		{"restore before new", []faultARCEvent{want[2], want[0], want[1], want[3], want[4]}, 1, 2, 1},
		{"nothing", nil, 0, 5, 0},
	} {
		res := faultARCAnalyse(want, tc.got)
		if res.duplicates != tc.dups || len(res.lost) != tc.lost || len(res.unexpected) != tc.unexpect || len(res.problems) != 0 {
			t.Errorf("%s: %s, problems %v; want duplicates %d, lost %d, unexpected %d", tc.name, res, res.problems, tc.dups, tc.lost, tc.unexpect)
		}
	}
}
