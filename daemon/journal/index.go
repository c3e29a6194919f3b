package journal

import (
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
// writes a report also updates, in the same transaction, bIncidents (the
// latest report of each open incident) and kReportSeq (the highest report
// seq): Open reads them in one short transaction. A file written before the
// index existed gets it built once, from its report records, at Open.

// indexReport updates the index for a report being committed: kept while
// active or acknowledged, removed otherwise. Drills are never restored and
// never indexed.
func indexReport(tx *bolt.Tx, r *engine.Report, report []byte) error {
	ib, mb := tx.Bucket(bIncidents), tx.Bucket(bMeta)
	if ib == nil || mb == nil {
		return corruptf("index: buckets missing")
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
	if r.Seq > metaSeq(mb) {
		return mb.Put(kReportSeq, strconv.AppendUint(nil, r.Seq, 10))
	}
	return nil
}

func metaSeq(mb *bolt.Bucket) uint64 {
	n, _ := strconv.ParseUint(string(mb.Get(kReportSeq)), 10, 64)
	return n
}

// buildIndex builds the index from every "report" record of the journal, in
// order (a file from before the index).
func buildIndex(tx *bolt.Tx) error {
	jb := tx.Bucket(bJournal)
	if jb == nil {
		return nil
	}
	return jb.ForEach(func(k, v []byte) error {
		rec, err := decodeRecord(k, v)
		if err != nil || rec.Kind != "report" {
			return nil // Verify reports a bad record; the index takes what reads
		}
		var d reportData
		if json.Unmarshal(rec.Data, &d) != nil {
			return nil
		}
		var r engine.Report
		if json.Unmarshal(d.Report, &r) != nil {
			return nil
		}
		return indexReport(tx, &r, d.Report)
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
		ib, mb := tx.Bucket(bIncidents), tx.Bucket(bMeta)
		if ib == nil || mb == nil {
			return nil
		}
		seq = metaSeq(mb)
		return ib.ForEach(func(k, v []byte) error {
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
	if mb := tx.Bucket(bMeta); mb != nil && reportSeq > metaSeq(mb) {
		return mb.Put(kReportSeq, strconv.AppendUint(nil, reportSeq, 10))
	}
	return nil
}
