package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/outbox"
)

// Buckets and meta keys of the database file.
var (
	bJournal = []byte("journal") // seqKey(seq) → encodeRecord
	bOutbox  = []byte("outbox")  // seqKey(n) → wireEntry, n in push order
	bRetired = []byte("retired") // seqKey(n) → time acknowledged (timeText)
	bMeta    = []byte("meta")

	kFormat = []byte("format") // hashDomain
	kTip    = []byte("tip")    // wireLink of the last record
	kAnchor = []byte("anchor") // wireLink of the last record pruned
	// kIndex, a bucket inside meta, is the index of open incidents:
	// incident id → the encoding/json of its latest report, while that
	// report says active or acknowledged (drills left out). Restore reads
	// it, whatever the journal's size. It is inside meta, not a top-level
	// bucket, so that a previous version (which refuses unknown top-level
	// buckets as damage) still opens the file.
	kIndex = []byte("open_incidents")
	// kIndexSeq is the journal seq the index covers up to (decimal); Open
	// catches up from there (a file written by a previous version).
	kIndexSeq = []byte("index_seq")
	// kReportSeq is the highest engine report seq journalled (decimal).
	kReportSeq = []byte("report_seq")
)

// tailCheck is how many of the last records Open verifies.
const tailCheck = 64

// wireLink names a record of the chain by seq and hash.
type wireLink struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// wireEntry is an outbox entry as stored.
type wireEntry struct {
	ID string `json:"id"`
	// Seq is the engine's report seq; Record the journal seq of its
	// "report" record.
	Seq      uint64          `json:"seq"`
	Record   uint64          `json:"record"`
	PushedAt string          `json:"pushed_at"`
	Report   json.RawMessage `json:"report,omitempty"` // encoding/json of engine.Report
	// Side is a side record (drill record, review, CCTV request) instead
	// of a report.
	Side *outbox.SideRecord `json:"side,omitempty"`
}

// loadedState is what Open reads from a sound database.
type loadedState struct {
	lastSeq    uint64
	lastHash   string
	anchorSeq  uint64
	anchorHash string
	pending    []*entry // unacknowledged, in push order
	needInit   bool     // buckets to create
}

// ioError marks an error of the file system (not of the file's content).
type ioError struct{ err error }

func (e *ioError) Error() string { return e.err.Error() }
func (e *ioError) Unwrap() error { return e.err }

// guard runs fn, turning a panic or a memory fault (a page of a damaged or
// truncated file read through bbolt's mmap) into an ErrCorrupt error instead
// of a crash — a crash would repeat at every start.
func guard(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if p := recover(); p != nil {
			err = corruptf("reading the database failed: %v", p)
		}
	}()
	return fn()
}

// openDB opens the database, replacing a damaged file (recoverFile).
func (s *Store) openDB() (*bolt.DB, *loadedState, error) {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o750); err != nil {
		return nil, nil, &ioError{err}
	}
	fi, err := os.Stat(s.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, &ioError{err}
	}
	fresh := err != nil || fi.Size() == 0
	if !fresh {
		if err := s.probe(fi.Size()); err != nil {
			if classify(err) == classCorrupt {
				return s.recoverFile(err)
			}
			return nil, nil, err
		}
	}
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: s.opts.OpenTimeout})
	if err != nil {
		switch classify(err) {
		case classCorrupt:
			if !fresh {
				return s.recoverFile(err)
			}
			err = &ioError{err}
		case classIO:
			if fresh {
				// A half-created file would look damaged at the next try.
				_ = os.Remove(s.path)
			}
		}
		return nil, nil, err
	}
	st, err := s.load(db)
	if err != nil {
		_ = db.Close()
		if classify(err) == classCorrupt && !fresh {
			return s.recoverFile(err)
		}
		if fresh {
			_ = os.Remove(s.path)
		}
		return nil, nil, err
	}
	if fresh {
		syncDir(filepath.Dir(s.path))
	}
	return db, st, nil
}

// probe checks an existing file read-only before bbolt opens it for
// writing (which reads its freelist): the meta pages must describe no more
// than the file holds, and every page reachable from the buckets must read.
// The shared lock it takes also tells a second daemon (ErrLocked) from
// damage.
func (s *Store) probe(size int64) error {
	return guard(func() error {
		db, err := bolt.Open(s.path, 0o600, &bolt.Options{ReadOnly: true, Timeout: s.opts.OpenTimeout})
		if err != nil {
			return err
		}
		defer db.Close()
		return db.View(func(tx *bolt.Tx) error {
			if tx.Size() > size {
				return corruptf("truncated: the meta page describes %d bytes, the file has %d", tx.Size(), size)
			}
			// Touch every key and value: a damaged page panics or faults
			// here, inside guard, and not later in the committer.
			return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				var n int
				return b.ForEach(func(k, v []byte) error {
					n += len(k) + len(v)
					return nil
				})
			})
		})
	})
}

// load reads the state of an opened database and creates what is missing.
func (s *Store) load(db *bolt.DB) (*loadedState, error) {
	var st *loadedState
	err := guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			var err error
			st, err = readState(tx)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	if st.needInit {
		err := db.Update(func(tx *bolt.Tx) error {
			for _, name := range [][]byte{bJournal, bOutbox, bRetired, bMeta} {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			if err := catchUpIndex(tx, st.lastSeq); err != nil {
				return err
			}
			return tx.Bucket(bMeta).Put(kFormat, []byte(hashDomain))
		})
		if err != nil {
			return nil, &ioError{fmt.Errorf("journal: initialise %s: %w", s.path, err)}
		}
	}
	return st, nil
}

// readState checks the file is a hallguard database whose chain tip is
// sound (the last tailCheck records verify and match the tip in meta) and
// reads the unacknowledged outbox entries.
func readState(tx *bolt.Tx) (*loadedState, error) {
	st := &loadedState{lastHash: zeroHash, anchorHash: zeroHash}
	known := map[string]bool{string(bJournal): true, string(bOutbox): true, string(bRetired): true, string(bMeta): true}
	var names int
	if err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		if !known[string(name)] {
			return corruptf("bucket %q: not a hallguard journal", name)
		}
		names++
		return nil
	}); err != nil {
		return nil, err
	}
	st.needInit = names < len(known)
	mb := tx.Bucket(bMeta)
	if names > 0 && (mb == nil || !bytes.Equal(mb.Get(kFormat), []byte(hashDomain))) {
		return nil, corruptf("meta: format is not %q", hashDomain)
	}
	var tip *wireLink
	if mb != nil {
		if v := mb.Get(kAnchor); v != nil {
			a, err := decodeLink(v)
			if err != nil {
				return nil, corruptf("meta anchor: %v", err)
			}
			st.anchorSeq, st.anchorHash = a.Seq, a.Hash
		}
		if v := mb.Get(kTip); v != nil {
			t, err := decodeLink(v)
			if err != nil {
				return nil, corruptf("meta tip: %v", err)
			}
			tip = &t
		}
	}
	st.lastSeq, st.lastHash = st.anchorSeq, st.anchorHash
	if jb := tx.Bucket(bJournal); jb != nil {
		seq, hash, err := verifyTail(jb, st.anchorSeq, st.anchorHash)
		if err != nil {
			return nil, err
		}
		st.lastSeq, st.lastHash = seq, hash
	}
	switch {
	case tip == nil && st.lastSeq != st.anchorSeq:
		return nil, corruptf("meta: no tip, journal ends at %d", st.lastSeq)
	case tip != nil && (tip.Seq != st.lastSeq || tip.Hash != st.lastHash):
		return nil, corruptf("meta: tip is record %d, journal ends at %d", tip.Seq, st.lastSeq)
	}
	// The index of open incidents behind the journal (a file from a
	// previous version): load catches it up.
	if mb == nil || mb.Bucket(kIndex) == nil || metaUint(mb, kIndexSeq) < st.lastSeq {
		st.needInit = true
	}
	if ob := tx.Bucket(bOutbox); ob != nil {
		rb := tx.Bucket(bRetired)
		err := ob.ForEach(func(k, v []byte) error {
			if rb != nil && rb.Get(k) != nil {
				return nil
			}
			e, err := decodeEntry(k, v)
			if err != nil {
				return err
			}
			st.pending = append(st.pending, e)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return st, nil
}

func decodeLink(v []byte) (wireLink, error) {
	var l wireLink
	if err := json.Unmarshal(v, &l); err != nil {
		return l, err
	}
	if !isHash(l.Hash) {
		return l, fmt.Errorf("%q is not a hash", l.Hash)
	}
	return l, nil
}

// verifyTail verifies the last tailCheck records of jb (their hashes, seqs
// and links; the first record's link to the anchor when it is among them)
// and returns the last one's seq and hash.
func verifyTail(jb *bolt.Bucket, anchorSeq uint64, anchorHash string) (uint64, string, error) {
	c := jb.Cursor()
	var tail []Record
	for k, v := c.Last(); k != nil && len(tail) < tailCheck; k, v = c.Prev() {
		r, err := decodeRecord(k, v)
		if err != nil {
			return 0, "", err
		}
		tail = append(tail, r)
	}
	if len(tail) == 0 {
		return anchorSeq, anchorHash, nil
	}
	if k, _ := c.First(); k == nil || len(k) != 8 || keySeq(k) != anchorSeq+1 {
		return 0, "", corruptf("journal does not start at record %d", anchorSeq+1)
	}
	for i := len(tail) - 1; i >= 0; i-- {
		r := &tail[i]
		if h := hashRecord(r); h != r.Hash {
			return 0, "", corruptf("record %d: hash mismatch", r.Seq)
		}
		if i < len(tail)-1 {
			if before := &tail[i+1]; r.Seq != before.Seq+1 || r.Prev != before.Hash {
				return 0, "", corruptf("record %d: does not follow record %d", r.Seq, before.Seq)
			}
		} else if r.Seq == anchorSeq+1 && r.Prev != anchorHash {
			return 0, "", corruptf("record %d: does not follow the chain's start", r.Seq)
		}
	}
	return tail[0].Seq, tail[0].Hash, nil
}

func keySeq(k []byte) uint64 {
	var n uint64
	for _, b := range k {
		n = n<<8 | uint64(b)
	}
	return n
}

// decodeEntry reads a stored outbox entry back into a pending message,
// marked Redelivered.
func decodeEntry(k, v []byte) (*entry, error) {
	if len(k) != 8 {
		return nil, corruptf("outbox key of %d bytes", len(k))
	}
	var w wireEntry
	if err := json.Unmarshal(v, &w); err != nil {
		return nil, corruptf("outbox entry %d: %v", keySeq(k), err)
	}
	at, err := time.Parse(time.RFC3339Nano, w.PushedAt)
	if err != nil {
		return nil, corruptf("outbox entry %d (%s): pushed_at: %v", keySeq(k), w.ID, err)
	}
	if w.Side != nil {
		side, err := sideRecord(w.Side, at)
		if side == nil {
			return nil, corruptf("outbox entry %d (%s): side record: %v", keySeq(k), w.ID, err)
		}
		return &entry{
			msg:  outbox.Message{ID: w.ID, Side: w.Side, Redelivered: true},
			side: side, pushedAt: at, key: keySeq(k), record: w.Record, durable: true, visible: true,
		}, nil
	}
	var r engine.Report
	if err := json.Unmarshal(w.Report, &r); err != nil {
		return nil, corruptf("outbox entry %d (%s): report: %v", keySeq(k), w.ID, err)
	}
	return &entry{
		msg:      outbox.Message{ID: w.ID, Report: r, Redelivered: true},
		report:   bytes.Clone(w.Report),
		pushedAt: at,
		key:      keySeq(k),
		record:   w.Record,
		durable:  true,
		visible:  true,
	}, nil
}

// recoverFile moves a damaged database aside and starts a new one. The new
// journal begins with a "trouble" record naming the old file, followed by
// the reports salvaged from its outbox; both are queued here and written
// by the first commit (or kept in memory while the disk refuses).
func (s *Store) recoverFile(cause error) (*bolt.DB, *loadedState, error) {
	now := s.clk.Now()
	rec := &Recovery{At: now, Path: s.path, Reason: cause.Error()}
	salvaged, unreadable, lastSeq, lastHash, serr := s.salvage()
	if serr != nil {
		s.log.Warn("salvage of the damaged database stopped early", "path", s.path, "err", serr)
	}
	index, reportSeq := s.salvageIndex()
	moved, err := moveAside(s.path, now)
	if err != nil {
		return nil, nil, &ioError{fmt.Errorf("journal: move damaged %s aside: %w", s.path, err)}
	}
	rec.MovedTo, rec.Salvaged, rec.Unreadable = moved, len(salvaged), unreadable
	rec.OldLastSeq, rec.OldLastHash = lastSeq, lastHash
	s.log.Error("database damaged: moved aside and started a new one",
		"path", s.path, "moved_to", moved, "reason", rec.Reason,
		"salvaged_reports", len(salvaged), "unreadable_entries", unreadable)

	ids := make([]string, len(salvaged))
	for i, e := range salvaged {
		ids[i] = e.msg.ID
	}
	data, err := encodeJSON(struct {
		Condition   string   `json:"condition"`
		Reason      string   `json:"reason"`
		MovedTo     string   `json:"moved_to"`
		OldLastSeq  uint64   `json:"old_last_seq,omitempty"`
		OldLastHash string   `json:"old_last_hash,omitempty"`
		Salvaged    []string `json:"salvaged"`
		Unreadable  int      `json:"unreadable"`
	}{"journal_recovered", rec.Reason, moved, lastSeq, lastHash, ids, unreadable})
	if err != nil {
		data = nil
	}
	trouble, err := prepare(Record{Time: now, Kind: "trouble", Data: data}, now)
	if err != nil {
		trouble, _ = prepare(Record{Time: now, Kind: "trouble"}, now)
	}
	ops := []*op{{kind: opAppend, recs: []Record{trouble}, replied: true}}
	if len(index) > 0 || reportSeq > 0 {
		// The open incidents of the damaged file, before its salvaged
		// reports (which may be later versions of them).
		ops = append(ops, &op{kind: opIndex, index: index, reportSeq: reportSeq})
	}
	for _, e := range salvaged {
		ops = append(ops, &op{kind: opPush, e: e})
	}
	s.mu.Lock()
	s.recovered = rec
	s.lane = append(ops, s.lane...) // ahead of everything, in this order
	s.entries = append(salvaged, s.entries...)
	s.backlogRecs++
	s.mu.Unlock()

	db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: s.opts.OpenTimeout})
	if err != nil {
		if classify(err) != classLocked {
			_ = os.Remove(s.path)
		}
		return nil, nil, &ioError{fmt.Errorf("journal: create %s: %w", s.path, err)}
	}
	st, err := s.load(db)
	if err != nil {
		_ = db.Close()
		_ = os.Remove(s.path)
		return nil, nil, &ioError{err}
	}
	syncDir(filepath.Dir(s.path))
	return db, st, nil
}

// salvage reads what it can from a damaged file: the unacknowledged outbox
// entries (as new, not yet durable, entries) and the last record that
// decodes. Best effort: it stops at the first page it cannot read.
func (s *Store) salvage() (got []*entry, unreadable int, lastSeq uint64, lastHash string, err error) {
	err = s.viewDamaged(func(tx *bolt.Tx) error {
		if jb := tx.Bucket(bJournal); jb != nil {
			c := jb.Cursor()
			for k, v := c.Last(); k != nil; k, v = c.Prev() {
				if r, err := decodeRecord(k, v); err == nil {
					lastSeq, lastHash = r.Seq, r.Hash
					break
				}
			}
		}
		ob := tx.Bucket(bOutbox)
		if ob == nil {
			return nil
		}
		rb := tx.Bucket(bRetired)
		return ob.ForEach(func(k, v []byte) error {
			if rb != nil && rb.Get(k) != nil {
				return nil
			}
			e, err := decodeEntry(k, v)
			if err != nil {
				unreadable++
				return nil
			}
			e.key, e.record, e.durable, e.salvaged = 0, 0, false, true
			got = append(got, e)
			return nil
		})
	})
	return got, unreadable, lastSeq, lastHash, err
}

// viewDamaged runs fn in a read-only transaction on the damaged file at
// s.path, guarded: a page it cannot read is an error, not a crash.
func (s *Store) viewDamaged(fn func(*bolt.Tx) error) error {
	return guard(func() error {
		db, err := bolt.Open(s.path, 0o600, &bolt.Options{ReadOnly: true, Timeout: s.opts.OpenTimeout})
		if err != nil {
			return err
		}
		defer db.Close()
		return db.View(fn)
	})
}

// salvageIndex reads what it can of a damaged file's index of open
// incidents and its highest report seq, so that a recovery does not forget
// an incident whose reports were all acknowledged (best effort: nothing
// when the index cannot be read).
func (s *Store) salvageIndex() (map[string][]byte, uint64) {
	index := map[string][]byte{}
	var seq uint64
	_ = s.viewDamaged(func(tx *bolt.Tx) error {
		return readIndex(tx, &seq, func(k, v []byte) error {
			if json.Valid(v) {
				index[string(k)] = bytes.Clone(v)
			}
			return nil
		})
	})
	return index, seq
}

// moveAside renames path to path.corrupt-<UTC timestamp> (with a suffix if
// that exists) and returns the new name.
func moveAside(path string, at time.Time) (string, error) {
	base := path + ".corrupt-" + at.UTC().Format("20060102T150405Z")
	dst := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
			break
		}
		dst = fmt.Sprintf("%s.%d", base, i)
	}
	if err := os.Rename(path, dst); err != nil {
		return "", err
	}
	syncDir(filepath.Dir(path))
	return dst, nil
}

// syncDir makes a created or renamed directory entry durable (bbolt syncs
// the file, not its directory).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
