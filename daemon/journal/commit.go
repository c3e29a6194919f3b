package journal

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/outbox"
)

// Group commit.
//
// Every write — appended records, outbox pushes, acks, compaction — is an
// op on one queue (s.queue, in arrival order) served by one committer
// goroutine. The committer takes everything queued (up to MaxBatch) into
// a single bbolt transaction, i.e. one fsync; whatever arrives while that
// commit is in flight waits in the queue and goes into the next one. So
// under load the number of fsyncs follows the disk's speed, not the number
// of records, and an idle store commits at once, with no batching delay.
//
// Reports take their own lane (s.lane: outbox pushes and acks): each commit
// takes the lane first, then fills up from the queue, so a report waits for
// at most the one commit in flight, never for a backlog of other records
// (§3.2). Appends are cut into ops of at most MaxBatch records for the same
// reason: no commit is bigger than MaxBatch. Within each lane the order of
// the calls is kept; the journal's chain is the commit order.
//
// The queue is a mutex-guarded slice plus a wake channel with a buffer of 1,
// not a channel of requests: Outbox.Push runs under the engine's lock and
// must never block, which a full channel would do; and a single queue keeps
// the journal in the order the calls were made.
//
// bbolt's DB.Batch was considered and not used: it holds every batch for
// MaxBatchDelay (10 ms by default) even when the disk is idle; it makes the
// caller wait, which Push must not; it does not keep the callers' order
// (the outbox must be in report order); and when one function of a batch
// fails it re-runs functions alone, so each would have to be idempotent
// while they assign sequence numbers.

type opKind uint8

const (
	opAppend opKind = iota + 1
	opPush
	opAck
	opCompact
	opIndex // a recovery's salvaged index of open incidents
)

// op is one queued write.
type op struct {
	kind opKind
	recs []Record  // opAppend: prepared records
	e    *entry    // opPush, opAck
	at   time.Time // opAck: when acknowledged; opCompact: now
	// opIndex: incident id → latest report (encoding/json), and the
	// highest report seq.
	index     map[string][]byte
	reportSeq uint64
	done      chan opResult // opAppend, opCompact: the waiting caller (buffer 1)
	// replied: the caller already has its answer (ErrDegraded): the records
	// are written when the disk works again, nobody waits for them.
	replied bool

	// Set by a commit attempt, used when it succeeds.
	seqs      []uint64
	key       uint64 // opPush: outbox key
	record    uint64 // opPush: journal seq of the report record
	ackedInTx bool   // opPush: its retirement is in the same transaction
	pruned    int    // opCompact
	anchor    *wireLink
}

type opResult struct {
	seqs []uint64
	n    int
	err  error
}

// entry is one report of the outbox, from Push until Ack.
type entry struct {
	msg      outbox.Message
	report   []byte  // encoding/json of msg.Report, taken at Push
	side     *Record // a side record's journal record (msg.Side), prepared at Push
	pushedAt time.Time
	budget   clock.Timer // ReportBudget timer, until durable
	key      uint64      // outbox key, once durable
	record   uint64      // journal seq of its report record, once durable
	durable  bool
	// visible: Peek may return it. Durable entries are; while degraded,
	// every entry is (reports flow from memory).
	visible  bool
	acked    bool
	salvaged bool // read from a damaged file by Open
	memOnly  bool // never to be written (cannot be encoded, or pushed after Close)
}

// reportData is the Data of a "report" journal record: the report's
// identity and, whole, the report as sent (§3.5: the journal export is the
// archive of what was reported).
type reportData struct {
	ID       string          `json:"id"`
	Seq      uint64          `json:"seq"`
	Incident string          `json:"incident"`
	Version  int             `json:"version"`
	Event    engine.Event    `json:"event"`
	State    engine.State    `json:"state"`
	Outbox   uint64          `json:"outbox"`
	Salvaged bool            `json:"salvaged,omitempty"`
	Report   json.RawMessage `json:"report"`
}

// Append writes recs to the journal and returns their seqs once they are on
// disk (fsync'd), batched with whatever else is being written. It assigns
// Seq, Prev and Hash, and Time where it is zero; each Kind must be
// non-empty and Data valid JSON (ErrInvalid otherwise, nothing appended).
// It blocks for one commit: never call it with the engine's lock held.
//
// While the store is degraded it returns at once with an error wrapping
// ErrDegraded: the records are kept in memory and written in order when
// the disk works again (ErrBacklogFull as well when MaxBacklog is reached:
// then they are dropped). After Close: ErrClosed.
func (s *Store) Append(recs ...Record) ([]uint64, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	now := s.clk.Now()
	prepped := make([]Record, len(recs))
	for i, r := range recs {
		p, err := prepare(r, now)
		if err != nil {
			return nil, err
		}
		prepped[i] = p
	}
	if s.readOnly {
		return nil, fmt.Errorf("journal: append: %w", ErrReadOnly)
	}
	// At most MaxBatch records per op, so that no commit is so big that a
	// report waits long behind it.
	var ops []*op
	for rest := prepped; len(rest) > 0; {
		n := min(len(rest), s.opts.MaxBatch)
		ops = append(ops, &op{kind: opAppend, recs: rest[:n:n], done: make(chan opResult, 1)})
		rest = rest[n:]
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("journal: append: %w", ErrClosed)
	}
	if s.degraded {
		cause := s.degErr
		if s.backlogRecs+len(prepped) > s.opts.MaxBacklog {
			first := s.dropped == 0
			s.dropped += uint64(len(prepped))
			s.mu.Unlock()
			if first {
				s.log.Error("journal backlog full while degraded: dropping records (never reports)", "max_backlog", s.opts.MaxBacklog)
			}
			return nil, fmt.Errorf("journal: append: %w: %w (%w)", ErrBacklogFull, ErrDegraded, cause)
		}
		for _, o := range ops {
			o.replied = true
		}
		s.backlogRecs += len(prepped)
		s.queue = append(s.queue, ops...)
		s.mu.Unlock()
		return nil, fmt.Errorf("journal: append: held in memory: %w (%w)", ErrDegraded, cause)
	}
	s.queue = append(s.queue, ops...)
	s.mu.Unlock()
	signal(s.wake)
	var seqs []uint64
	var err error
	for _, o := range ops {
		res := <-o.done
		if err == nil {
			err = res.err
		}
		seqs = append(seqs, res.seqs...)
	}
	if err != nil {
		return nil, err
	}
	return seqs, nil
}

// Compact deletes what has outlived its retention at now: retired outbox
// entries acknowledged before now-Retention, and — only when
// JournalRetention is set — the oldest journal records older than
// now-JournalRetention (a prefix of the chain; an anchor keeps the seq and
// hash of the last one deleted). At most 10000 of each per call; call it
// periodically (hourly is plenty). It returns how many were deleted.
func (s *Store) Compact(now time.Time) (int, error) {
	if s.opts.Retention <= 0 && s.opts.JournalRetention <= 0 {
		return 0, nil
	}
	o := &op{kind: opCompact, at: now, done: make(chan opResult, 1)}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return 0, fmt.Errorf("journal: compact: %w", ErrClosed)
	case s.degraded:
		cause := s.degErr
		s.mu.Unlock()
		return 0, fmt.Errorf("journal: compact: %w (%w)", ErrDegraded, cause)
	}
	s.queue = append(s.queue, o)
	s.mu.Unlock()
	signal(s.wake)
	res := <-o.done
	return res.n, res.err
}

// run is the committer.
func (s *Store) run() {
	defer close(s.done)
	for {
		select {
		case <-s.wake:
		case <-s.quit:
			s.final()
			return
		}
		s.gather()
		s.drain(false)
	}
}

// gather waits SyncEvery for more work, when configured.
func (s *Store) gather() {
	if s.opts.SyncEvery <= 0 {
		return
	}
	s.mu.Lock()
	skip := s.degraded || len(s.queue)+len(s.lane) >= s.opts.MaxBatch
	s.mu.Unlock()
	if skip {
		return
	}
	ch := make(chan struct{})
	t := s.clk.AfterFunc(s.opts.SyncEvery, func() { close(ch) })
	select {
	case <-ch:
	case <-s.quit:
		t.Stop()
	}
}

// drain commits the queue until it is empty. While degraded it does nothing
// unless a retry is due (or force: one attempt, for Open and Close).
func (s *Store) drain(force bool) {
	for {
		s.mu.Lock()
		if s.degraded && !s.retryDue && !force {
			s.mu.Unlock()
			return
		}
		s.retryDue = false
		if s.db == nil {
			s.mu.Unlock()
			if !s.reopen() {
				return
			}
			force = false
			continue
		}
		batch, nLane := s.takeBatchLocked()
		base, baseHash := s.lastSeq, s.headHash
		degraded := s.degraded
		s.mu.Unlock()
		if len(batch) == 0 && !degraded {
			return
		}
		// An empty batch while degraded is a probe: bbolt still writes its
		// freelist and meta page.
		seq, hash, err := s.commit(batch, base, baseHash)
		if err != nil {
			s.failed(err)
			return
		}
		s.succeeded(batch, nLane, seq, hash)
		force = false
	}
}

// takeBatchLocked returns the next batch, up to MaxBatch records and ops:
// the report lane first, then the queue; and how many of them came from the
// lane.
func (s *Store) takeBatchLocked() ([]*op, int) {
	var batch []*op
	units := 0
	take := func(q []*op) int {
		n := 0
		for n < len(q) {
			o := q[n]
			u := 1
			if o.kind == opAppend {
				u = len(o.recs)
			}
			if len(batch) > 0 && units+u > s.opts.MaxBatch {
				break
			}
			if o.kind == opPush {
				o.ackedInTx = o.e.acked
			}
			batch = append(batch, o)
			n++
			units += u
		}
		return n
	}
	nLane := take(s.lane)
	if nLane == len(s.lane) {
		take(s.queue)
	}
	return batch, nLane
}

// commit writes batch in one transaction continuing the chain from record
// base (hash baseHash), and returns the new tip.
func (s *Store) commit(batch []*op, base uint64, baseHash string) (uint64, string, error) {
	seq, prev := base, baseHash
	start := time.Now()
	s.commitStart.Store(start.UnixNano())
	defer s.commitStart.Store(0)
	err := guard(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			jb, ob, rb, mb := tx.Bucket(bJournal), tx.Bucket(bOutbox), tx.Bucket(bRetired), tx.Bucket(bMeta)
			put := func(r *Record) error {
				seq++
				r.Seq, r.Prev = seq, prev
				r.Hash = hashRecord(r)
				v, err := encodeRecord(r)
				if err != nil {
					return err
				}
				if err := jb.Put(seqKey(seq), v); err != nil {
					return err
				}
				prev = r.Hash
				return nil
			}
			for _, o := range batch {
				switch o.kind {
				case opAppend:
					o.seqs = make([]uint64, 0, len(o.recs))
					for i := range o.recs {
						r := o.recs[i]
						if err := put(&r); err != nil {
							return err
						}
						o.seqs = append(o.seqs, r.Seq)
					}
				case opPush:
					if err := s.putPush(o, ob, rb, put); err != nil {
						return err
					}
				case opAck:
					if err := rb.Put(seqKey(o.e.key), []byte(timeText(o.at))); err != nil {
						return err
					}
				case opCompact:
					if err := s.compactTx(o, jb, ob, rb, mb); err != nil {
						return err
					}
				case opIndex:
					if err := restoreIndex(tx, o.index, o.reportSeq); err != nil {
						return err
					}
				}
			}
			if seq != base {
				tip, err := encodeJSON(wireLink{Seq: seq, Hash: prev})
				if err != nil {
					return err
				}
				if err := mb.Put(kTip, tip); err != nil {
					return err
				}
				// Every report of this commit is in the index.
				if err := indexCovers(mb, seq); err != nil {
					return err
				}
			}
			if s.opts.writeFault != nil {
				if err := s.opts.writeFault(); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return 0, "", err
	}
	if s.opts.OnFsync != nil {
		s.opts.OnFsync(time.Since(start))
	}
	return seq, prev, nil
}

// putPush writes an outbox entry and its "report" journal record.
func (s *Store) putPush(o *op, ob, rb *bolt.Bucket, put func(*Record) error) error {
	e := o.e
	key, err := ob.NextSequence()
	if err != nil {
		return err
	}
	if e.side != nil {
		return s.putSide(o, key, ob, rb, put)
	}
	r := &e.msg.Report
	data, err := encodeJSON(reportData{
		ID: e.msg.ID, Seq: r.Seq, Incident: r.Incident, Version: r.Version, Event: r.Event,
		State: r.State, Outbox: key, Salvaged: e.salvaged, Report: e.report,
	})
	if err != nil {
		return err
	}
	rec := Record{Time: e.pushedAt.UTC(), Kind: "report", Incident: r.Incident, Playbook: r.Playbook, Drill: r.Drill, Data: data}
	if err := put(&rec); err != nil {
		return err
	}
	if err := indexReport(ob.Tx(), r, e.report); err != nil {
		return err
	}
	return s.putEntry(o, key, wireEntry{ID: e.msg.ID, Seq: r.Seq, Record: rec.Seq, PushedAt: timeText(e.pushedAt), Report: e.report}, ob, rb)
}

// putSide writes a side record's outbox entry and its journal record (of
// its own kind, with its data: what drill history and the exports read).
func (s *Store) putSide(o *op, key uint64, ob, rb *bolt.Bucket, put func(*Record) error) error {
	e := o.e
	rec := *e.side
	rec.Time = e.pushedAt.UTC()
	if err := put(&rec); err != nil {
		return err
	}
	return s.putEntry(o, key, wireEntry{ID: e.msg.ID, Record: rec.Seq, PushedAt: timeText(e.pushedAt), Side: e.msg.Side}, ob, rb)
}

// putEntry writes a push's outbox entry w under key, and its retirement
// when it was acknowledged before this transaction (ackedInTx).
func (s *Store) putEntry(o *op, key uint64, w wireEntry, ob, rb *bolt.Bucket) error {
	v, err := encodeJSON(w)
	if err != nil {
		return err
	}
	if err := ob.Put(seqKey(key), v); err != nil {
		return err
	}
	if o.ackedInTx {
		if err := rb.Put(seqKey(key), []byte(timeText(s.clk.Now()))); err != nil {
			return err
		}
	}
	o.key, o.record = key, w.Record
	return nil
}

const compactMax = 10000

// compactTx deletes retired entries and, with JournalRetention, old
// records (see Compact).
func (s *Store) compactTx(o *op, jb, ob, rb, mb *bolt.Bucket) error {
	o.pruned, o.anchor = 0, nil
	if s.opts.Retention > 0 {
		cutoff := o.at.Add(-s.opts.Retention)
		var old [][]byte
		c := rb.Cursor()
		for k, v := c.First(); k != nil && len(old) < compactMax; k, v = c.Next() {
			t, err := time.Parse(time.RFC3339Nano, string(v))
			if err == nil && t.Before(cutoff) {
				old = append(old, append([]byte(nil), k...))
			}
		}
		for _, k := range old {
			if err := ob.Delete(k); err != nil {
				return err
			}
			if err := rb.Delete(k); err != nil {
				return err
			}
		}
		o.pruned += len(old)
	}
	if s.opts.JournalRetention > 0 {
		cutoff := o.at.Add(-s.opts.JournalRetention)
		var old [][]byte
		var last *wireLink
		c := jb.Cursor()
		// Only a prefix, and never past a record it cannot read or one
		// inside the retention: the chain left stays whole.
		for k, v := c.First(); k != nil && len(old) < compactMax; k, v = c.Next() {
			r, err := decodeRecord(k, v)
			if err != nil || !r.Time.Before(cutoff) {
				break
			}
			old = append(old, append([]byte(nil), k...))
			last = &wireLink{Seq: r.Seq, Hash: r.Hash}
		}
		if last != nil {
			for _, k := range old {
				if err := jb.Delete(k); err != nil {
					return err
				}
			}
			a, err := encodeJSON(*last)
			if err != nil {
				return err
			}
			if err := mb.Put(kAnchor, a); err != nil {
				return err
			}
			o.pruned += len(old)
			o.anchor = last
		}
	}
	return nil
}

// succeeded applies a committed batch (its first nLane ops from the
// report lane, the rest from the queue): waiters answered, pushes durable,
// trouble cleared.
func (s *Store) succeeded(batch []*op, nLane int, seq uint64, hash string) {
	s.mu.Lock()
	s.lastSeq, s.headHash = seq, hash
	s.lane = dropHead(s.lane, nLane)
	s.queue = dropHead(s.queue, len(batch)-nLane)
	for _, o := range batch {
		switch o.kind {
		case opAppend:
			if o.replied {
				s.backlogRecs -= len(o.recs)
			} else {
				o.done <- opResult{seqs: o.seqs}
			}
		case opPush:
			e := o.e
			e.key, e.record, e.durable, e.visible = o.key, o.record, true, true
			e.msg.NotDurable = false
			if e.budget != nil {
				e.budget.Stop()
				e.budget = nil
			}
			if e.acked && !o.ackedInTx {
				s.lane = append(s.lane, &op{kind: opAck, e: e, at: s.clk.Now()})
			}
		case opCompact:
			if o.anchor != nil {
				s.anchorSeq = o.anchor.Seq
			}
			o.done <- opResult{n: o.pruned}
		}
	}
	s.commits++
	recovered := s.degraded
	var since error
	if recovered {
		since = s.degErr
		s.degraded, s.degErr = false, nil
	}
	fast := s.slow && s.allDurableLocked()
	if fast {
		s.slow = false
	}
	more := len(s.queue)+len(s.lane) > 0
	s.mu.Unlock()
	signal(s.notify)
	if more {
		signal(s.wake)
	}
	if fast {
		s.log.Info("journal keeps up again: every report held is on disk")
		if s.opts.OnSlow != nil {
			s.opts.OnSlow(false, nil)
		}
	}
	if recovered {
		s.log.Info("state directory writable again: backlog being written", "after", since)
		if s.opts.OnTrouble != nil {
			s.opts.OnTrouble(false, nil)
		}
	}
}

// failed handles a failed commit: the store becomes degraded (logged and
// reported once), every report becomes visible from memory, waiters get
// ErrDegraded, and a retry is scheduled. Nothing leaves the queue but
// compactions.
func (s *Store) failed(err error) {
	s.mu.Lock()
	first := !s.degraded
	s.degraded, s.degErr = true, err
	for _, e := range s.entries {
		e.visible = true
		e.msg.NotDurable = e.msg.NotDurable || !e.durable
	}
	derr := fmt.Errorf("journal: append: held in memory: %w (%w)", ErrDegraded, err)
	keep := func(q []*op) []*op {
		kept := q[:0]
		for _, o := range q {
			switch o.kind {
			case opAppend:
				if !o.replied {
					o.replied = true
					s.backlogRecs += len(o.recs)
					o.done <- opResult{err: derr}
				}
			case opCompact:
				o.done <- opResult{err: fmt.Errorf("journal: compact: %w (%w)", ErrDegraded, err)}
				continue
			}
			kept = append(kept, o)
		}
		for i := len(kept); i < len(q); i++ {
			q[i] = nil
		}
		return kept
	}
	s.lane = keep(s.lane)
	s.queue = keep(s.queue)
	s.scheduleRetryLocked()
	backlog := len(s.queue) + len(s.lane)
	s.mu.Unlock()
	signal(s.notify)
	if first {
		s.log.Error("cannot write the state directory: degraded, reports kept in memory and retried",
			"path", s.path, "err", err, "backlog", backlog, "retry_s", s.opts.RetryEvery.Seconds())
		if s.opts.OnTrouble != nil {
			s.opts.OnTrouble(true, fmt.Errorf("%w: %w", ErrDegraded, err))
		}
	} else {
		s.log.Debug("retry failed", "err", err, "backlog", backlog)
	}
}

// scheduleRetryLocked arms the retry timer unless it is armed.
func (s *Store) scheduleRetryLocked() {
	if s.retryTimer != nil || s.closed {
		return
	}
	s.retryTimer = s.clk.AfterFunc(s.opts.RetryEvery, func() {
		s.mu.Lock()
		s.retryTimer = nil
		s.retryDue = true
		s.mu.Unlock()
		signal(s.wake)
	})
}

// reopen tries to open the database of a store that started without one.
func (s *Store) reopen() bool {
	db, st, err := s.openDB()
	if err != nil {
		s.mu.Lock()
		s.degErr = err
		s.scheduleRetryLocked()
		s.mu.Unlock()
		s.log.Debug("database still not available", "path", s.path, "err", err)
		return false
	}
	s.install(db, st)
	s.log.Info("database opened", "path", s.path)
	return true
}

// install makes db the store's database, with its pending reports ahead of
// those pushed meanwhile.
func (s *Store) install(db *bolt.DB, st *loadedState) {
	s.dbMu.Lock()
	s.db = db
	s.dbMu.Unlock()
	s.mu.Lock()
	s.lastSeq, s.anchorSeq, s.headHash = st.lastSeq, st.anchorSeq, st.lastHash
	if len(st.pending) > 0 {
		s.entries = append(st.pending, s.entries...)
	}
	if s.degraded {
		s.retryDue = true
	}
	s.mu.Unlock()
}

// final is the committer's last drain, at Close.
func (s *Store) final() {
	s.drain(true)
	s.mu.Lock()
	for _, o := range slices.Concat(s.lane, s.queue) {
		if o.done != nil && !o.replied {
			o.replied = true
			o.done <- opResult{err: fmt.Errorf("journal: %w before written", ErrClosed)}
		}
	}
	s.mu.Unlock()
}

// dropHead removes the first n ops of q.
func dropHead(q []*op, n int) []*op {
	for i := range n {
		q[i] = nil
	}
	q = q[n:]
	if len(q) == 0 {
		return nil
	}
	return q
}

// allDurableLocked reports whether every report held is on disk.
func (s *Store) allDurableLocked() bool {
	for _, e := range s.entries {
		if !e.durable && !e.memOnly {
			return false
		}
	}
	return true
}

// budgetExpired is the ReportBudget timer of one pushed report: if the disk
// still has not committed it, it and every report behind it are made
// sendable from memory, flagged NotDurable, and the store turns slow.
func (s *Store) budgetExpired(e *entry) {
	s.mu.Lock()
	if e.durable || e.acked || s.closed {
		s.mu.Unlock()
		return
	}
	first := !s.slow
	s.slow = true
	for _, x := range s.entries {
		if !x.durable && !x.visible {
			x.visible, x.msg.NotDurable = true, true
		}
	}
	s.mu.Unlock()
	signal(s.notify)
	if first {
		err := fmt.Errorf("journal: report %s not on disk after %s: sent from memory, not yet durable", e.msg.ID, s.opts.ReportBudget)
		s.log.Error("disk too slow for the report budget: reports sent from memory until it catches up",
			"report", e.msg.ID, "budget_s", s.opts.ReportBudget.Seconds())
		if s.opts.OnSlow != nil {
			s.opts.OnSlow(true, err)
		}
	}
}
