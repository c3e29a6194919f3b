package journal

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Filter selects journal records. Zero fields select everything.
type Filter struct {
	// Since (inclusive) and Until (exclusive) bound Record.Time.
	Since, Until time.Time
	Playbook     string
	Incident     string
	Kind         string
	// Drill, when set, selects drill (true) or live (false) records.
	Drill *bool
	// From is the first seq to consider (for incremental archives).
	From uint64
	// Limit bounds how many records are returned (0: no limit).
	Limit int
}

func (f *Filter) match(r *Record) bool {
	switch {
	case !f.Since.IsZero() && r.Time.Before(f.Since),
		!f.Until.IsZero() && !r.Time.Before(f.Until),
		f.Playbook != "" && r.Playbook != f.Playbook,
		f.Incident != "" && r.Incident != f.Incident,
		f.Kind != "" && r.Kind != f.Kind,
		f.Drill != nil && r.Drill != *f.Drill:
		return false
	}
	return true
}

// chunk is how many records one read transaction covers: long read
// transactions would hold up the committer when the file must grow.
const chunk = 1000

// view runs fn in a read transaction, guarded against damaged pages.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	if s.db == nil {
		s.mu.Lock()
		closed, cause := s.closed, s.degErr
		s.mu.Unlock()
		if closed {
			return ErrClosed
		}
		return fmt.Errorf("journal: no database: %w (%w)", ErrDegraded, cause)
	}
	return guard(func() error { return s.db.View(fn) })
}

// scan calls fn for the records matching f, in seq order, reading in
// chunks.
func (s *Store) scan(f Filter, fn func(*Record) error) error {
	next := max(f.From, 1)
	matched := 0
	var kind []byte
	if f.Kind != "" {
		if b, err := encodeJSON(f.Kind); err == nil {
			kind = append([]byte(`"kind":`), b...)
		}
	}
	for {
		var got []Record
		end := false
		err := s.view(func(tx *bolt.Tx) error {
			jb := tx.Bucket(bJournal)
			if jb == nil {
				end = true
				return nil
			}
			c := jb.Cursor()
			k, v := c.Seek(seqKey(next))
			for n := 0; n < chunk; n++ {
				if k == nil {
					end = true
					return nil
				}
				if kind != nil && !bytes.Contains(v, kind) && len(k) == 8 {
					// Not of the kind asked for (the stored encoding
					// always holds "kind":"<kind>"): not decoded, so that
					// reading one kind at start does not cost a decode of
					// the whole journal. Verify still checks every record.
					next = keySeq(k) + 1
					k, v = c.Next()
					continue
				}
				r, err := decodeRecord(k, v)
				if err != nil {
					return err
				}
				next = r.Seq + 1
				if f.match(&r) {
					got = append(got, r)
				}
				k, v = c.Next()
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("journal: read: %w", err)
		}
		for i := range got {
			if f.Limit > 0 && matched == f.Limit {
				return nil
			}
			matched++
			if err := fn(&got[i]); err != nil {
				return err
			}
		}
		if end || (f.Limit > 0 && matched == f.Limit) {
			return nil
		}
	}
}

// List returns the records matching f, in seq order.
func (s *Store) List(f Filter) ([]Record, error) {
	var out []Record
	err := s.scan(f, func(r *Record) error {
		out = append(out, *r)
		return nil
	})
	return out, err
}

// Get returns record seq, or an error wrapping ErrNotFound.
func (s *Store) Get(seq uint64) (Record, error) {
	var r Record
	err := s.view(func(tx *bolt.Tx) error {
		jb := tx.Bucket(bJournal)
		var v []byte
		if jb != nil {
			v = jb.Get(seqKey(seq))
		}
		if v == nil {
			return fmt.Errorf("journal: record %d: %w", seq, ErrNotFound)
		}
		var err error
		r, err = decodeRecord(seqKey(seq), v)
		return err
	})
	return r, err
}

// VerifyResult is the outcome of Verify.
type VerifyResult struct {
	// Records is how many records verified, from the start of the chain.
	Records uint64
	// FirstBad is the seq of the first record that failed (changed,
	// unlinked, out of place, or missing); 0 when the chain is sound.
	FirstBad uint64
	// Reason says what was wrong with FirstBad.
	Reason string
	// Last and LastHash are the last verified record: writing LastHash
	// down elsewhere (the archive, the center) makes a later rewrite of the
	// whole chain detectable too.
	Last     uint64
	LastHash string
}

// Verify walks the whole chain: each record must be stored under its seq,
// be its own canonical encoding, hash to its Hash, link by Prev to the
// record before, and follow it without a gap, up to the last record
// committed. It stops at the first bad record. The error is for a journal
// it could not read at all.
func (s *Store) Verify() (VerifyResult, error) {
	s.mu.Lock()
	tip := s.lastSeq
	s.mu.Unlock()
	var res VerifyResult
	var next uint64
	prev := ""
	for {
		end := false
		err := s.view(func(tx *bolt.Tx) error {
			jb, mb := tx.Bucket(bJournal), tx.Bucket(bMeta)
			if jb == nil {
				end = true
				return nil
			}
			aSeq, aHash := uint64(0), zeroHash
			if v := getMeta(mb, kAnchor); v != nil {
				a, err := decodeLink(v)
				if err != nil {
					res.FirstBad, res.Reason, end = 1, fmt.Sprintf("meta anchor unreadable: %v", err), true
					return nil
				}
				aSeq, aHash = a.Seq, a.Hash
			}
			if next == 0 || aSeq >= next {
				// The start, or records pruned meanwhile by Compact.
				next, prev = aSeq+1, aHash
				res.Last, res.LastHash = aSeq, aHash
			}
			c := jb.Cursor()
			k, v := c.Seek(seqKey(next))
			for n := 0; n < chunk; n++ {
				if k == nil {
					end = true
					if next <= tip {
						res.FirstBad = next
						res.Reason = fmt.Sprintf("records %d to %d missing at the end", next, tip)
					}
					return nil
				}
				bad := func(format string, args ...any) error {
					res.FirstBad, res.Reason, end = next, fmt.Sprintf(format, args...), true
					return nil
				}
				if len(k) != 8 {
					return bad("key of %d bytes after record %d", len(k), next-1)
				}
				if ks := keySeq(k); ks != next {
					return bad("record %d missing (next is %d)", next, ks)
				}
				r, err := decodeRecord(k, v)
				switch {
				case err != nil:
					return bad("%v", err)
				case hashRecord(&r) != r.Hash:
					return bad("record %d: hash mismatch: content changed", next)
				case r.Prev != prev:
					return bad("record %d: prev does not match the hash of record %d", next, next-1)
				}
				prev = r.Hash
				res.Records++
				res.Last, res.LastHash = r.Seq, r.Hash
				next++
				k, v = c.Next()
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("journal: verify: %w", err)
		}
		if end {
			return res, nil
		}
	}
}

func getMeta(mb *bolt.Bucket, k []byte) []byte {
	if mb == nil {
		return nil
	}
	return mb.Get(k)
}
