package journal

import (
	"encoding/json"
	"fmt"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/outbox"
)

// incidentReport is report i of incident inc in state st.
func incidentReport(i int, inc string, st engine.State, seq uint64) outbox.Message {
	r := report(i)
	r.Incident, r.State, r.Seq, r.Drill = inc, st, seq, false
	r.ID = inc + ".v" + string(rune('0'+r.Version))
	return outbox.Message{ID: r.ID, Report: r}
}

// pushDurable pushes msgs to ob and waits until want messages are on disk
// (Peek returns the durable ones).
func pushDurable(t *testing.T, ob *Outbox, want int, msgs ...outbox.Message) {
	t.Helper()
	for _, m := range msgs {
		ob.Push(m)
	}
	waitFor(t, fmt.Sprintf("%d durable", want), func() bool { return len(ob.Peek(10)) == want })
}

func chatter(t *testing.T, s *Store, n int) {
	t.Helper()
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{Kind: "input", Data: json.RawMessage(`{"id":"door-1","active":true}`)}
	}
	if _, err := s.Append(recs...); err != nil {
		t.Fatal(err)
	}
}

// robberyAndFire journals, at path, a robbery acknowledged (seq 1, 2) and a
// fire resolved (seq 3, 4), their reports all retired, then n records of a
// chattering door, and closes the store.
func robberyAndFire(t *testing.T, path string, clk clock.Clock, n int) {
	t.Helper()
	s := openT(t, path, Options{Clock: clk})
	ob := s.Outbox()
	pushDurable(t, ob, 4,
		incidentReport(0, "rob-1", engine.StateActive, 1),
		incidentReport(1, "rob-1", engine.StateAcknowledged, 2),
		incidentReport(3, "fire-1", engine.StateActive, 3),
		incidentReport(4, "fire-1", engine.StateResolved, 4))
	for _, m := range ob.Peek(10) {
		ob.Ack(m.ID)
	}
	chatter(t, s, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func openIDs(t *testing.T, s *Store) (map[string]engine.Report, uint64) {
	t.Helper()
	open, seq, err := s.OpenIncidents()
	if err != nil {
		t.Fatalf("OpenIncidents: %v", err)
	}
	out := map[string]engine.Report{}
	for _, r := range open {
		out[r.Incident] = r
	}
	return out, seq
}

// wantOpen checks what s restores: exactly one open incident, id, for which
// ok holds (want says what ok wants, in the failure), and the report seq
// that the sequence continues from. when names the case.
func wantOpen(t *testing.T, s *Store, when, id string, ok func(engine.Report) bool, want string, seq uint64) {
	t.Helper()
	open, got := openIDs(t, s)
	if r, found := open[id]; len(open) != 1 || !found || !ok(r) {
		t.Fatalf("open incidents %s: %+v, want %s", when, open, want)
	}
	if got != seq {
		t.Errorf("last report seq %s = %d, want %d", when, got, seq)
	}
}

// TestOpenIncidentsFoundWhateverTheJournalSize: an acknowledged robbery
// followed by 60,000 records of a chattering door is still found after a
// restart (the index of open incidents, not a window of recent records),
// with its latest report; a resolved incident is not; the highest report
// seq is known so that the sequence continues.
func TestOpenIncidentsFoundWhateverTheJournalSize(t *testing.T) {
	clk := clock.NewFake(t0)
	path := dbPath(t)
	robberyAndFire(t, path, clk, 60_000)

	s := openT(t, path, Options{Clock: clk})
	wantOpen(t, s, "after 60,000 records", "rob-1", func(r engine.Report) bool {
		return r.State == engine.StateAcknowledged && r.Version == 2
	}, "rob-1 acknowledged (v2) only", 4)
}

// TestOpenIncidentIndexBuiltForAnOlderJournal: a journal written before
// the index existed gets it built from its report records at Open.
func TestOpenIncidentIndexBuiltForAnOlderJournal(t *testing.T) {
	clk := clock.NewFake(t0)
	path := dbPath(t)
	s := openT(t, path, Options{Clock: clk})
	ob := s.Outbox()
	pushDurable(t, ob, 3,
		incidentReport(0, "rob-1", engine.StateActive, 5),
		incidentReport(3, "fire-1", engine.StateActive, 6),
		incidentReport(4, "fire-1", engine.StateResolved, 7))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// As the previous version left it: no index, no report seq.
	tamper(t, path, func(tx *bolt.Tx) error {
		mb := tx.Bucket(bMeta)
		if mb.Bucket(kIndex) != nil {
			if err := mb.DeleteBucket(kIndex); err != nil {
				return err
			}
		}
		if err := mb.Delete(kIndexSeq); err != nil {
			return err
		}
		return mb.Delete(kReportSeq)
	})

	s = openT(t, path, Options{Clock: clk})
	wantOpen(t, s, "of an older journal", "rob-1", func(r engine.Report) bool { return r.Version == 1 }, "rob-1", 7)
	if res, err := s.Verify(); err != nil || res.FirstBad != 0 {
		t.Errorf("Verify: %+v %v", res, err)
	}
}

// TestRecoveredJournalKeepsOpenIncidents: a journal found damaged at Open
// is moved aside; the incidents its index held open are carried into the
// new journal's index (an acknowledged robbery, its report long retired,
// is still restored), and the report seq still continues.
func TestRecoveredJournalKeepsOpenIncidents(t *testing.T) {
	clk := clock.NewFake(t0)
	path := dbPath(t)
	robberyAndFire(t, path, clk, 10)
	tamper(t, path, func(tx *bolt.Tx) error { // the tip no longer matches: damaged
		return tx.Bucket(bJournal).Delete(seqKey(13))
	})

	s := openT(t, path, Options{Clock: clk})
	if s.Recovered() == nil {
		t.Fatal("the damaged file was not recovered")
	}
	wantOpen(t, s, "after the recovery", "rob-1", func(r engine.Report) bool {
		return r.State == engine.StateAcknowledged
	}, "rob-1 acknowledged", 4)
}

// TestOpenIncidentIndexSurvivesADowngrade: the index lives inside the meta
// bucket, where a previous version (which refuses unknown top-level
// buckets) does not look; reports such a version journalled meanwhile,
// past the index's seq, are caught up at the next Open: a robbery resolved
// under the old version is not restored.
func TestOpenIncidentIndexSurvivesADowngrade(t *testing.T) {
	clk := clock.NewFake(t0)
	path := dbPath(t)
	s := openT(t, path, Options{Clock: clk})
	ob := s.Outbox()
	pushDurable(t, ob, 1, incidentReport(0, "rob-1", engine.StateActive, 1))
	var covered uint64
	if err := s.view(func(tx *bolt.Tx) error {
		covered = metaUint(tx.Bucket(bMeta), kIndexSeq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	pushDurable(t, ob, 3,
		incidentReport(1, "rob-1", engine.StateResolved, 2),
		incidentReport(3, "fire-1", engine.StateActive, 3))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// As if an older version had written the last two reports: the index
	// as it was when only rob-1 was open, and its seq behind the journal.
	tamper(t, path, func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("incidents")) != nil {
			return fmt.Errorf("the index is a top-level bucket: an older version moves the file aside")
		}
		mb := tx.Bucket(bMeta)
		ib := mb.Bucket(kIndex)
		if err := ib.Delete([]byte("fire-1")); err != nil {
			return err
		}
		b, _ := json.Marshal(incidentReport(0, "rob-1", engine.StateActive, 1).Report)
		if err := ib.Put([]byte("rob-1"), b); err != nil {
			return err
		}
		if err := mb.Put(kReportSeq, []byte("1")); err != nil {
			return err
		}
		return mb.Put(kIndexSeq, []byte(fmt.Sprint(covered)))
	})
	s = openT(t, path, Options{Clock: clk})
	wantOpen(t, s, "after the downgrade and back", "fire-1", func(r engine.Report) bool {
		return r.State == engine.StateActive
	}, "fire-1 only (rob-1 was resolved)", 3)
}
