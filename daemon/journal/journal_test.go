package journal

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hallguard/hallguard/devices/clock"
)

func TestAppendVerifyRoundTrip(t *testing.T) {
	clk := clock.NewFake(t0)
	path := dbPath(t)
	s := openT(t, path, Options{Clock: clk})
	in := []Record{
		{Kind: "config", Data: json.RawMessage(`{ "hall" : "hall-1", "inputs": [1, 2,3] }`)},
		{Kind: "input", Data: json.RawMessage(`{"id":"panic-1","active":true}`)},
		{Kind: "incident", Incident: "inc-1", Playbook: "robbery", Data: json.RawMessage(`{"variant":"armed"}`)},
		{Kind: "step", Incident: "inc-1", Playbook: "robbery", Time: t0.Add(-time.Hour).In(time.FixedZone("CST", 8*3600)), Data: json.RawMessage(`{"step":"s1","by":"李娜 <teller>"}`)},
		{Kind: "drill", Playbook: "fire", Drill: true},
		{Kind: "custom-kind", Incident: "inc-1", Data: json.RawMessage(`"\u2028 & <"`)},
	}
	seqs, err := s.Append(in[:3]...)
	if err != nil {
		t.Fatal(err)
	}
	more, err := s.Append(in[3:]...)
	if err != nil {
		t.Fatal(err)
	}
	if got := append(seqs, more...); !slices.Equal(got, []uint64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("seqs %v", got)
	}
	check := func(s *Store) {
		t.Helper()
		recs, err := s.List(Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != len(in) {
			t.Fatalf("List: %d records, want %d", len(recs), len(in))
		}
		prev := zeroHash
		for i, r := range recs {
			want := in[i]
			if r.Seq != uint64(i+1) || r.Kind != want.Kind || r.Incident != want.Incident || r.Playbook != want.Playbook || r.Drill != want.Drill {
				t.Errorf("record %d: %+v, want %+v", i+1, r, want)
			}
			wantTime := want.Time
			if wantTime.IsZero() {
				wantTime = t0
			}
			if !r.Time.Equal(wantTime) || r.Time.Location() != time.UTC {
				t.Errorf("record %d: time %v, want %v in UTC", i+1, r.Time, wantTime)
			}
			if r.Prev != prev {
				t.Errorf("record %d: prev %s, want %s", i+1, r.Prev, prev)
			}
			if h := auditHash(strconv.FormatUint(r.Seq, 10), timeText(r.Time), r.Kind, r.Incident, r.Playbook,
				strconv.FormatBool(r.Drill), string(r.Data), r.Prev); h != r.Hash {
				t.Errorf("record %d: hash %s, auditor computes %s", i+1, r.Hash, h)
			}
			prev = r.Hash
			g, err := s.Get(r.Seq)
			if err != nil || g.Hash != r.Hash {
				t.Errorf("Get(%d) = %+v, %v", r.Seq, g, err)
			}
		}
		if string(recs[0].Data) != `{"hall":"hall-1","inputs":[1,2,3]}` {
			t.Errorf("data not compacted: %s", recs[0].Data)
		}
		if string(recs[4].Data) != "null" {
			t.Errorf("empty data stored as %s, want null", recs[4].Data)
		}
		if string(recs[5].Data) != `"\u2028 & <"` {
			t.Errorf("data escaped: %s", recs[5].Data)
		}
		res, err := s.Verify()
		if err != nil || res.FirstBad != 0 || res.Records != uint64(len(in)) || res.LastHash != prev {
			t.Fatalf("Verify = %+v, %v", res, err)
		}
	}
	check(s)
	if _, err := s.Get(99); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(99): %v, want ErrNotFound", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, path, Options{Clock: clk})
	check(s)
	seqs, err = s.Append(Record{Kind: "review", Incident: "inc-1"})
	if err != nil || !slices.Equal(seqs, []uint64{7}) {
		t.Fatalf("Append after reopen: %v, %v", seqs, err)
	}
	if res, err := s.Verify(); err != nil || res.FirstBad != 0 || res.Records != 7 {
		t.Fatalf("Verify after reopen = %+v, %v", res, err)
	}
}

func TestAppendInvalid(t *testing.T) {
	s := openT(t, dbPath(t), Options{})
	for _, tc := range []struct {
		name string
		rec  Record
	}{
		{"no kind", Record{Data: json.RawMessage(`{}`)}},
		{"data not JSON", Record{Kind: "input", Data: json.RawMessage(`{"a":`)}},
		{"data two values", Record{Kind: "input", Data: json.RawMessage(`1 2`)}},
		{"control character in kind", Record{Kind: "in\r\nput"}},
		{"invalid UTF-8 incident", Record{Kind: "input", Incident: "\xff"}},
		{"year out of range", Record{Kind: "input", Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if seqs, err := s.Append(Record{Kind: "ok"}, tc.rec); !errors.Is(err, ErrInvalid) || seqs != nil {
				t.Fatalf("Append: %v, %v; want ErrInvalid", seqs, err)
			}
		})
	}
	if st := s.Stats(); st.Records != 0 {
		t.Errorf("%d records appended by invalid calls", st.Records)
	}
}

// TestGroupCommit: 3 appenders x 200 records give seqs 1..600 without a gap,
// a sound chain, and fewer commits (fsyncs) than records.
func TestGroupCommit(t *testing.T) {
	var mu sync.Mutex
	var fsyncs []time.Duration
	s := openT(t, dbPath(t), Options{OnFsync: func(d time.Duration) {
		mu.Lock()
		fsyncs = append(fsyncs, d)
		mu.Unlock()
	}})
	mu.Lock()
	before := len(fsyncs)
	mu.Unlock()
	const writers, each = 3, 200
	got := make([][]uint64, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				seqs, err := s.Append(Record{Kind: "input", Data: json.RawMessage(`{"writer":` + strconv.Itoa(w) + `,"i":` + strconv.Itoa(i) + `}`)})
				if err != nil {
					t.Error(err)
					return
				}
				got[w] = append(got[w], seqs...)
			}
		})
	}
	wg.Wait()
	var all []uint64
	for w := range writers {
		if !slices.IsSorted(got[w]) {
			t.Errorf("writer %d: seqs out of order", w)
		}
		all = append(all, got[w]...)
	}
	slices.Sort(all)
	for i, seq := range all {
		if seq != uint64(i+1) {
			t.Fatalf("seqs not 1..%d: position %d has %d", writers*each, i, seq)
		}
	}
	if len(all) != writers*each {
		t.Fatalf("%d seqs", len(all))
	}
	res, err := s.Verify()
	if err != nil || res.FirstBad != 0 || res.Records != writers*each {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
	mu.Lock()
	d := slices.Clone(fsyncs[before:])
	mu.Unlock()
	if len(d) >= writers*each {
		t.Errorf("%d commits for %d records: no group commit", len(d), writers*each)
	}
	slices.Sort(d)
	t.Logf("%d records in %d commits; commit (write+fsync) latency median %v, p99 %v, max %v",
		writers*each, len(d), d[len(d)/2], d[len(d)*99/100], d[len(d)-1])
}

// TestVerifyDetectsChangedByte changes one byte of a stored record (in a
// bbolt transaction of its own, as a tamperer would) and expects Verify to
// name that record.
func TestVerifyDetectsChangedByte(t *testing.T) {
	s := openT(t, dbPath(t), Options{Clock: clock.NewFake(t0)})
	for i := range 20 {
		if _, err := s.Append(Record{Kind: "step", Incident: "inc-" + strconv.Itoa(i), Playbook: "fire",
			Data: json.RawMessage(`{"step":"s` + strconv.Itoa(i) + `","note":"ab\u001bc","n":1234}`)}); err != nil {
			t.Fatal(err)
		}
	}
	const victim = 7
	var orig []byte
	if err := s.db.View(func(tx *bolt.Tx) error {
		orig = slices.Clone(tx.Bucket(bJournal).Get(seqKey(victim)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	put := func(v []byte) {
		t.Helper()
		if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bJournal).Put(seqKey(victim), v) }); err != nil {
			t.Fatal(err)
		}
	}
	at := func(field string) int { return strings.Index(string(orig), field) + len(field) + 2 }
	for _, tc := range []struct {
		name string
		pos  int
		b    byte // 0: flip the low bit
	}{
		{"first byte", 0, 0},
		{"seq digit", at(`"seq"`) - 1, '8'},
		{"time digit", at(`"time"`) + 3, 0},
		{"kind", at(`"kind"`), 0},
		{"incident", at(`"incident"`), 0},
		{"playbook", at(`"playbook"`), 0},
		{"drill", at(`"drill"`) - 1, 't'},
		{"data key", at(`"data"`) - 1 + 2, 0},
		{"data number", strings.Index(string(orig), "1234"), '5'},
		{"data escape hex case", strings.Index(string(orig), `u001b`) + 4, 'B'},
		{"prev", at(`"prev"`) + 10, 0},
		{"hash", at(`"hash"`) + 30, 0},
		{"field name case", strings.Index(string(orig), `"kind"`) + 1, 'K'},
		{"last byte", len(orig) - 1, ' '},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := slices.Clone(orig)
			if tc.b == 0 {
				v[tc.pos] ^= 1
			} else {
				v[tc.pos] = tc.b
			}
			if string(v) == string(orig) {
				t.Fatalf("test changes nothing at %d", tc.pos)
			}
			put(v)
			defer put(orig)
			res, err := s.Verify()
			if err != nil {
				t.Fatal(err)
			}
			if res.FirstBad != victim || res.Records != victim-1 {
				t.Fatalf("changed %q to %q: Verify = %+v, want FirstBad %d", orig[tc.pos], v[tc.pos], res, victim)
			}
			t.Logf("%s: %s", tc.name, res.Reason)
		})
	}
	if res, err := s.Verify(); err != nil || res.FirstBad != 0 || res.Records != 20 {
		t.Fatalf("restored: Verify = %+v, %v", res, err)
	}
}

// TestVerifyDetectsStructure: a deleted record (gap), swapped records, a
// rewritten record with a recomputed hash (broken link), a deleted tail.
func TestVerifyDetectsStructure(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tamper   func(jb *bolt.Bucket) error
		firstBad uint64
		reason   string
	}{
		{"deleted record", func(jb *bolt.Bucket) error { return jb.Delete(seqKey(5)) }, 5, "missing"},
		{"swapped records", func(jb *bolt.Bucket) error {
			a, b := slices.Clone(jb.Get(seqKey(5))), slices.Clone(jb.Get(seqKey(6)))
			if err := jb.Put(seqKey(5), b); err != nil {
				return err
			}
			return jb.Put(seqKey(6), a)
		}, 5, "stored under key"},
		{"rewritten with its hash recomputed", func(jb *bolt.Bucket) error {
			r, err := decodeRecord(seqKey(4), jb.Get(seqKey(4)))
			if err != nil {
				return err
			}
			r.Data = json.RawMessage(`{"n":"forged"}`)
			r.Hash = hashRecord(&r)
			v, err := encodeRecord(&r)
			if err != nil {
				return err
			}
			return jb.Put(seqKey(4), v)
		}, 5, "prev does not match"},
		{"deleted tail", func(jb *bolt.Bucket) error {
			if err := jb.Delete(seqKey(10)); err != nil {
				return err
			}
			return jb.Delete(seqKey(9))
		}, 9, "missing at the end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, dbPath(t), Options{})
			for i := range 10 {
				if _, err := s.Append(Record{Kind: "input", Data: json.RawMessage(`{"n":` + strconv.Itoa(i) + `}`)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.db.Update(func(tx *bolt.Tx) error { return tc.tamper(tx.Bucket(bJournal)) }); err != nil {
				t.Fatal(err)
			}
			res, err := s.Verify()
			if err != nil {
				t.Fatal(err)
			}
			if res.FirstBad != tc.firstBad || !strings.Contains(res.Reason, tc.reason) {
				t.Fatalf("Verify = %+v, want FirstBad %d, reason with %q", res, tc.firstBad, tc.reason)
			}
		})
	}
}

func TestCompact(t *testing.T) {
	clk := clock.NewFake(t0)
	path := dbPath(t)
	opts := Options{Clock: clk, Retention: time.Hour, JournalRetention: 24 * time.Hour}
	s := openT(t, path, opts)
	ob := s.Outbox()
	for i := range 3 {
		ob.Push(message(i))
	}
	waitFor(t, "3 durable", func() bool { return len(ob.Peek(10)) == 3 })
	if _, err := s.Append(Record{Kind: "input", Time: t0.Add(-48 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ob.Ack(message(0).ID)
	ob.Ack(message(1).ID)
	clk.Advance(30 * time.Minute)
	// Too young for either retention: nothing goes.
	if n, err := s.Compact(clk.Now()); err != nil || n != 0 {
		t.Fatalf("Compact after 30m = %d, %v", n, err)
	}
	clk.Advance(time.Hour)
	// Two retired entries; the journal records of t0 (3 reports) are
	// younger than a day, so the old input record after them stays too:
	// only a prefix of the chain is pruned.
	if n, err := s.Compact(clk.Now()); err != nil || n != 2 {
		t.Fatalf("Compact after 90m = %d, %v", n, err)
	}
	clk.Advance(48 * time.Hour)
	if _, err := s.Append(Record{Kind: "input"}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Compact(clk.Now()); err != nil || n != 4 {
		t.Fatalf("Compact after 2 days = %d, %v; want the 4 old records", n, err)
	}
	check := func(s *Store) {
		t.Helper()
		res, err := s.Verify()
		if err != nil || res.FirstBad != 0 || res.Records != 1 || res.Last != 5 {
			t.Fatalf("Verify after pruning = %+v, %v", res, err)
		}
		if st := s.Stats(); st.Records != 1 || st.Pending != 1 {
			t.Fatalf("Stats = %+v", st)
		}
		if _, err := s.Get(4); !errors.Is(err, ErrNotFound) {
			t.Fatalf("pruned record 4: %v", err)
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, path, opts)
	check(s)
	if got := s.Outbox().Peek(10); len(got) != 1 || got[0].ID != message(2).ID {
		t.Fatalf("pending after compaction: %v", got)
	}
	if seqs, err := s.Append(Record{Kind: "input"}); err != nil || seqs[0] != 6 {
		t.Fatalf("Append after pruning: %v, %v", seqs, err)
	}
	if res, err := s.Verify(); err != nil || res.FirstBad != 0 || res.Records != 2 {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
}

// TestSyncEvery: with SyncEvery the committer holds the first write for
// that long (on the injected clock) and commits everything that came
// meanwhile in one transaction.
func TestSyncEvery(t *testing.T) {
	clk := clock.NewFake(t0)
	var mu sync.Mutex
	commits := 0
	s := openT(t, dbPath(t), Options{Clock: clk, SyncEvery: 50 * time.Millisecond, OnFsync: func(time.Duration) {
		mu.Lock()
		commits++
		mu.Unlock()
	}})
	ob := s.Outbox()
	ob.Push(message(0))
	// Two timers: the report's ReportBudget and the committer's SyncEvery.
	waitFor(t, "the committer to wait", func() bool { return clk.Pending() == 2 })
	for i := 1; i < 10; i++ {
		ob.Push(message(i))
	}
	if n := len(ob.Peek(100)); n != 0 {
		t.Fatalf("%d peekable before the commit", n)
	}
	clk.Advance(50 * time.Millisecond)
	waitFor(t, "the commit", func() bool { return len(ob.Peek(100)) == 10 })
	mu.Lock()
	defer mu.Unlock()
	if commits != 1 {
		t.Fatalf("%d commits for 10 reports gathered by SyncEvery, want 1", commits)
	}
}
