package journal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"github.com/hallguard/hallguard/daemon/engine"
)

// The index of open incidents.
//
// Restore after a restart or crash must find every incident still open,
// however many records came after its last report (a chattering door writes
// thousands an hour), and continue the report sequence. So each commit that
// writes a report also updates, in the same transaction, the kIndex bucket
// inside meta (the latest report of each open incident), kReportSeq (the
// highest report seq) and kIndexSeq (the journal seq the index covers):
// OpenIncidents reads them in one short transaction. A file whose index is
// missing or behind its journal (written before the index existed, or by a
// previous version after a downgrade) is caught up at Open from the report
// records past kIndexSeq.

// indexReport updates the index for a report being committed: kept while
// active or acknowledged, removed otherwise. Drills are never restored and
// never indexed.
func indexReport(tx *bolt.Tx, r *engine.Report, report []byte) error {
	mb := tx.Bucket(bMeta)
	if mb == nil {
		return corruptf("index: no meta bucket")
	}
	ib, err := mb.CreateBucketIfNotExists(kIndex)
	if err != nil {
		return err
	}
	if r.Incident != "" {
		key := []byte(r.Incident)
		if !r.Drill && (r.State == engine.StateActive || r.State == engine.StateAcknowledged) {
			if err := ib.Put(key, report); err != nil {
				return err
			}
		} else if err := ib.Delete(key); err != nil {
			return err
		}
	}
	return raiseReportSeq(mb, r.Seq)
}

// raiseReportSeq sets kReportSeq to seq if that is higher.
func raiseReportSeq(mb *bolt.Bucket, seq uint64) error {
	if seq > metaUint(mb, kReportSeq) {
		return mb.Put(kReportSeq, strconv.AppendUint(nil, seq, 10))
	}
	return nil
}

// readIndex sets *seq to tx's highest report seq, then calls fn for each
// entry of its index of open incidents (incident id, encoding/json of its
// latest report); a file without them has none.
func readIndex(tx *bolt.Tx, seq *uint64, fn func(k, v []byte) error) error {
	mb := tx.Bucket(bMeta)
	if mb == nil {
		return nil
	}
	*seq = metaUint(mb, kReportSeq)
	ib := mb.Bucket(kIndex)
	if ib == nil {
		return nil
	}
	return ib.ForEach(fn)
}

// metaUint reads a decimal meta value (0 when absent).
func metaUint(mb *bolt.Bucket, k []byte) uint64 {
	n, _ := strconv.ParseUint(string(mb.Get(k)), 10, 64)
	return n
}

// indexCovers records that the index is up to date with the journal up to
// seq.
func indexCovers(mb *bolt.Bucket, seq uint64) error {
	return mb.Put(kIndexSeq, strconv.AppendUint(nil, seq, 10))
}

// catchUpIndex brings the index up to the journal's tip: it applies, in
// order, the report records past kIndexSeq (all of them for a file without
// an index).
func catchUpIndex(tx *bolt.Tx, tip uint64) error {
	mb, jb := tx.Bucket(bMeta), tx.Bucket(bJournal)
	if _, err := mb.CreateBucketIfNotExists(kIndex); err != nil {
		return err
	}
	from := metaUint(mb, kIndexSeq)
	if from >= tip {
		return indexCovers(mb, max(from, tip))
	}
	c := jb.Cursor()
	for k, v := c.Seek(seqKey(from + 1)); k != nil; k, v = c.Next() {
		if !bytes.Contains(v, []byte(`"kind":"report"`)) {
			continue
		}
		rec, err := decodeRecord(k, v)
		if err != nil || rec.Kind != "report" {
			continue // Verify reports a bad record; the index takes what reads
		}
		var d reportData
		if json.Unmarshal(rec.Data, &d) != nil {
			continue
		}
		var r engine.Report
		if json.Unmarshal(d.Report, &r) != nil {
			continue
		}
		if err := indexReport(tx, &r, d.Report); err != nil {
			return err
		}
	}
	return indexCovers(mb, tip)
}

// Reports calls fn, in journal order, with every journalled report whose
// engine seq is above after: what a second lane (the DC-09 path, arc.db)
// must be handed again when a crash came between the journal's commit and
// its own. It reads the whole journal by kind, in chunks, like scan.
func (s *Store) Reports(after uint64, fn func(engine.Report) error) error {
	return s.scan(Filter{Kind: "report"}, func(rec *Record) error {
		var d reportData
		if json.Unmarshal(rec.Data, &d) != nil || d.Seq <= after {
			return nil // Verify reports a bad record
		}
		var r engine.Report
		if json.Unmarshal(d.Report, &r) != nil {
			return nil
		}
		return fn(r)
	})
}

// OpenIncidents returns the latest report of every incident still open
// (active or acknowledged, drills left out) by the journal's index, in no
// particular order, and the highest report seq ever journalled: what
// engine.Restore and engine.WithFirstSeq need after a restart. While the
// store has no database (degraded at Open) it fails with ErrDegraded:
// then nothing can be restored, and the caller must say so.
func (s *Store) OpenIncidents() ([]engine.Report, uint64, error) {
	var out []engine.Report
	var seq uint64
	err := s.view(func(tx *bolt.Tx) error {
		return readIndex(tx, &seq, func(k, v []byte) error {
			var r engine.Report
			if err := json.Unmarshal(v, &r); err != nil {
				return corruptf("open incident %q: %v", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("journal: open incidents: %w", err)
	}
	return out, seq, nil
}

// restoreIndex writes a damaged file's index into the new one (Open's
// recovery): entries that do not decode are left out.
func restoreIndex(tx *bolt.Tx, index map[string][]byte, reportSeq uint64) error {
	for _, v := range index {
		var r engine.Report
		if json.Unmarshal(v, &r) != nil || r.Incident == "" {
			continue
		}
		if err := indexReport(tx, &r, v); err != nil {
			return err
		}
	}
	if mb := tx.Bucket(bMeta); mb != nil {
		return raiseReportSeq(mb, reportSeq)
	}
	return nil
}
