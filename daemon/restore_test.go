package daemon_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/daemon/journal"
	"github.com/hallguard/hallguard/devices"
)

func (r *running) robbery() (engine.Incident, bool) {
	for _, inc := range r.d.Engine().Incidents() {
		if inc.Playbook == "robbery" && (inc.State == engine.StateActive || inc.State == engine.StateAcknowledged) {
			return inc, true
		}
	}
	return engine.Incident{}, false
}

// pressUntil presses an input until ok holds: a press before the input's
// watch began is not an edge the daemon can see, so it is released and
// pressed again.
func (r *running) pressUntil(id string, ok func() bool) {
	r.t.Helper()
	in := r.sim.Input(id)
	for range 20 {
		in.Press()
		for range 50 {
			if ok() {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		in.Release()
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("%s pressed 20 times: nothing raised", id)
}

// lastReportSeq reads the highest report seq in the journal's export.
func (r *running) lastReportSeq() uint64 {
	b := r.get("http://" + r.d.LocalAddr() + "/api/journal/export?kind=report")
	var max uint64
	for _, line := range strings.Split(strings.TrimSpace(b), "\n") {
		var rec struct {
			Data struct{ Seq uint64 } `json:"data"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Data.Seq > max {
			max = rec.Data.Seq
		}
	}
	return max
}

// TestRestartRestoresRobberyBehindChatter: an acknowledged robbery
// followed by 60,000 journal records of a chattering door is restored
// after a restart, latch and police link included, and the report seq
// continues where it stopped.
func TestRestartRestoresRobberyBehindChatter(t *testing.T) {
	dir := t.TempDir()
	r := startHall(t, inDir(dir))
	r.pressUntil("panic-1", func() bool { _, ok := r.robbery(); return ok })
	inc, _ := r.robbery()
	if _, err := r.d.Engine().Do(engine.Command{Verb: engine.VerbAck, Incident: inc.ID, By: "center", Origin: engine.OriginCenter}); err != nil {
		t.Fatal(err)
	}
	r.eventually("ack journalled", func() bool { return r.lastReportSeq() >= 2 })
	before := r.lastReportSeq()
	r.stop()

	st, err := journal.Open(daemon.JournalPath(dir), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]journal.Record, 60_000)
	for i := range recs {
		recs[i] = journal.Record{Kind: "input", Data: json.RawMessage(`{"id":"door-1","kind":"generic","active":true}`)}
	}
	if _, err := st.Append(recs...); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	r = startHall(t, inDir(dir))
	got, ok := r.robbery()
	if !ok || got.ID != inc.ID || got.State != engine.StateAcknowledged {
		t.Fatalf("after 60,000 records and a restart: robbery %+v (found %v), want %s acknowledged", got, ok, inc.ID)
	}
	r.eventually("police link driven again", func() bool { return r.sim.Output("police-link").Level() == devices.High })
	r.eventually("the restore report journalled", func() bool { return r.lastReportSeq() > before })
	if seq := r.lastReportSeq(); seq != before+1 {
		t.Errorf("report seq after the restart = %d, want %d (continuing, not restarting at 1)", seq, before+1)
	}
}

// TestUnreadableJournalAtStartReachesTheCenter: a journal that cannot be
// read at start (here the disk refuses every write: /dev/full) leaves the
// open incidents unknown; trouble journal_unreadable says so on the
// retained conditions topic, and clears once the journal could be read and
// the restore was done.
func TestUnreadableJournalAtStartReachesTheCenter(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full here")
	}
	dir := t.TempDir()
	if err := os.Symlink("/dev/full", filepath.Join(dir, "hallguard.db")); err != nil {
		t.Fatal(err)
	}
	r := startHall(t, inDir(dir))
	wait := r.conditions().wait
	wait("journal_unreadable raised", func(p string) bool { return strings.Contains(p, `"kind":"journal_unreadable"`) }, 5*time.Second)
	// The store retries the disk every 10 s; the symlink is gone (a fresh
	// file was refused and removed), so the retry works.
	wait("journal_unreadable cleared", func(p string) bool { return !strings.Contains(p, `"kind":"journal_unreadable"`) }, 25*time.Second)
}
