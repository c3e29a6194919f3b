package journal

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hallguard/hallguard/devices/clock"
)

// Defaults of Options.
const (
	DefaultOpenTimeout = time.Second
	DefaultMaxBatch    = 1024
	DefaultRetryEvery  = 10 * time.Second
	DefaultMaxBacklog  = 100_000
	// DefaultReportBudget: see Options.ReportBudget.
	DefaultReportBudget = time.Second
)

// Options are the store's settings and hooks. Every field is optional. The
// hooks are called from the store's committer goroutine (OnTrouble also from
// Open, before it returns), with no lock held; they must return quickly and
// must not call Append, Compact or Close (those wait for the committer).
type Options struct {
	// Clock stamps records and schedules the retries and SyncEvery
	// (default clock.Real). Fsync latency is measured in real time.
	Clock  clock.Clock
	Logger *slog.Logger
	// OpenTimeout bounds the wait for the file lock (default 1s): a second
	// daemon on the same state directory fails fast with ErrLocked.
	OpenTimeout time.Duration
	// Retention is how long retired (acknowledged) outbox entries are kept
	// before Compact deletes them; 0 keeps them forever. The reports
	// themselves are also in the journal's "report" records.
	Retention time.Duration
	// JournalRetention: Compact never deletes a journal record younger than
	// this; 0 (the default) keeps the journal forever. Pruned records are
	// replaced by an anchor (seq and hash of the last one pruned) so Verify
	// still checks the chain that is left; export them before (§3.5).
	JournalRetention time.Duration
	// SyncEvery, when > 0, holds a commit that has work for up to this long
	// to gather more into it (more latency, fewer fsyncs). The default 0
	// commits as soon as the committer is free; whatever arrives while a
	// commit is in flight goes into the next one.
	SyncEvery time.Duration
	// MaxBatch bounds the operations (appended records, pushes, acks) of one
	// transaction (default 1024).
	MaxBatch int
	// RetryEvery is how often a degraded store tries the disk again
	// (default 10s).
	RetryEvery time.Duration
	// MaxBacklog bounds the journal records held in memory while degraded
	// (default 100000); beyond it Append drops records with ErrBacklogFull.
	// Reports pushed to the outbox are never dropped.
	MaxBacklog int
	// OnTrouble is called with true when the store becomes degraded, with
	// the cause, and with false, nil when writing works again: once per
	// transition, never per record.
	OnTrouble func(active bool, err error)
	// ReportBudget is how long a pushed report may wait for the disk
	// (default 1s). A report not committed by then — a hung fsync, a disk
	// that answers in seconds — is made sendable from memory, flagged
	// NotDurable, and OnSlow is raised; it is still written, in order, when
	// the disk answers (§3.2: reported without delay, whatever the disk).
	ReportBudget time.Duration
	// OnSlow is called with true when a report outlived ReportBudget
	// waiting for the disk, with the cause, and with false, nil once every
	// report held is on disk again: once per transition.
	OnSlow func(active bool, err error)
	// OnFsync is called after every successful commit with its duration
	// (the write and fsync of one transaction), for a latency histogram.
	OnFsync func(d time.Duration)

	// writeFault, for tests, is called inside each write transaction after
	// its changes; an error fails the transaction as a failing disk would.
	writeFault func() error
}

// Stats are the store's figures for the daemon's metrics.
type Stats struct {
	// Records is how many journal records are on disk.
	Records uint64
	// Bytes is the size of the database file.
	Bytes int64
	// Pending is how many reports wait for their PUBACK (Outbox.Len).
	Pending int
	// Degraded: see Store.Degraded.
	Degraded bool
	// Backlog is how many operations wait for the disk (both lanes).
	Backlog int
	// Slow: a report outlived ReportBudget waiting for the disk and
	// reports are being sent from memory (OnSlow).
	Slow bool
	// Commits counts the successful transactions since Open.
	Commits uint64
	// Dropped counts journal records dropped while degraded
	// (ErrBacklogFull).
	Dropped uint64
}

// Recovery describes how Open replaced a damaged database file. The daemon
// raises it as trouble.
type Recovery struct {
	// At is when it happened (Options.Clock).
	At time.Time
	// Path is the database; MovedTo where the damaged file now is.
	Path, MovedTo string
	// Reason says what was wrong.
	Reason string
	// Salvaged is how many unacknowledged reports were read from the damaged
	// file into the new one (they are sent again); Unreadable how many
	// entries of its outbox could not be read.
	Salvaged, Unreadable int
	// OldLastSeq and OldLastHash are the last readable record of the damaged
	// journal (zero and "" when none could be read); the new journal's first
	// record, a "trouble" record, names them and the moved file.
	OldLastSeq  uint64
	OldLastHash string
}

func (r *Recovery) String() string {
	return fmt.Sprintf("database %s replaced (%s); damaged file kept as %s; %d pending reports salvaged, %d unreadable",
		r.Path, r.Reason, r.MovedTo, r.Salvaged, r.Unreadable)
}

// Store is the journal and the outbox in one bbolt file. It is safe for
// concurrent use. A single committer goroutine does every write.
type Store struct {
	path     string
	opts     Options
	readOnly bool         // OpenReadOnly: no committer, every write refused
	cleanup  func() error // OpenSnapshot: removes the copy at Close
	log      *slog.Logger
	clk      clock.Clock

	wake   chan struct{} // work for the committer (buffer 1)
	notify chan struct{} // Outbox.Notify (buffer 1)
	quit   chan struct{}
	done   chan struct{} // closed when the committer has ended
	outbox *Outbox

	// dbMu guards db: readers hold it shared for their transaction; the
	// committer takes it exclusively only to install a database, Close to
	// close it. The committer's own transactions need no lock: it is the
	// only one that replaces db.
	dbMu sync.RWMutex
	db   *bolt.DB

	// commitStart is the real time (UnixNano) the commit in flight began,
	// 0 when the committer is not inside the disk (CommitAge).
	commitStart atomic.Int64

	// lane holds the report lane's operations (outbox pushes and acks, and
	// a recovery's first records): every commit takes them first, ahead of
	// queue, so a report never waits behind other journal records (§3.2).
	// Guarded by mu.
	lane []*op

	mu          sync.Mutex
	queue       []*op    // other operations not yet on disk, in order
	entries     []*entry // unacknowledged reports, oldest first
	lastSeq     uint64   // committed
	headHash    string   // hash of record lastSeq (zeroHash for none; the anchor's after pruning): the chain's tip with lastSeq
	anchorSeq   uint64   // journal records up to here were pruned
	degraded    bool
	degErr      error
	slow        bool // a report outlived ReportBudget (OnSlow)
	retryDue    bool
	retryTimer  clock.Timer
	closed      bool
	loggedAfter bool // "push after close" logged
	commits     uint64
	dropped     uint64
	backlogRecs int // journal records in queue held while degraded
	recovered   *Recovery
}

// Open opens (or creates) the database at path and starts the committer.
//
//   - Another process holding the file: an error wrapping ErrLocked, after
//     at most about OpenTimeout.
//   - A damaged file (not a bbolt database, truncated, bad meta pages, a
//     failing chain in its last records, an unreadable entry): the file is
//     moved to <path>.corrupt-<UTC timestamp>, its unacknowledged reports
//     are salvaged when they can be read, a fresh database is started, and
//     Open succeeds with Recovered describing it. It never fails the same
//     way twice on the next start.
//   - A file system that refuses (read-only, disk full, permissions): Open
//     succeeds with the store degraded (reports flow from memory), raises
//     OnTrouble and retries every RetryEvery.
func Open(path string, opts Options) (*Store, error) {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = DefaultOpenTimeout
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.RetryEvery <= 0 {
		opts.RetryEvery = DefaultRetryEvery
	}
	if opts.MaxBacklog <= 0 {
		opts.MaxBacklog = DefaultMaxBacklog
	}
	if opts.ReportBudget <= 0 {
		opts.ReportBudget = DefaultReportBudget
	}
	s := &Store{
		path:     path,
		opts:     opts,
		log:      opts.Logger.With("component", "journal"),
		clk:      opts.Clock,
		wake:     make(chan struct{}, 1),
		notify:   make(chan struct{}, 1),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		headHash: zeroHash,
	}
	s.outbox = &Outbox{s: s}

	db, st, err := s.openDB()
	switch {
	case err != nil && classify(err) == classLocked:
		return nil, fmt.Errorf("journal: open %s: %w", path, ErrLocked)
	case err != nil:
		// The file system refuses: run from memory and retry.
		s.degraded, s.degErr, s.retryDue = true, err, false
		s.log.Error("state directory not writable: reports are kept in memory until it is",
			"path", path, "err", err, "retry_s", s.opts.RetryEvery.Seconds())
		s.scheduleRetryLocked()
		if s.opts.OnTrouble != nil {
			s.opts.OnTrouble(true, fmt.Errorf("%w: %w", ErrDegraded, err))
		}
	default:
		s.install(db, st)
		// The recovery record and salvaged reports go to disk before Open
		// returns (or the store starts degraded with them in memory).
		s.drain(true)
	}
	go s.run()
	return s, nil
}

// Close writes what is queued (one last attempt when degraded), stops the
// committer and closes the file. Reports pushed after Close stay in memory
// only. Close is idempotent; the error says what could not be written.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.closed = true
	if s.retryTimer != nil {
		s.retryTimer.Stop()
	}
	s.mu.Unlock()
	close(s.quit)
	<-s.done

	s.mu.Lock()
	left := len(s.queue) + len(s.lane)
	s.mu.Unlock()
	s.dbMu.Lock()
	var err error
	if s.db != nil {
		err = s.db.Close()
		s.db = nil
	}
	s.dbMu.Unlock()
	if err != nil {
		err = fmt.Errorf("journal: close: %w", err)
	}
	if s.cleanup != nil { // OpenSnapshot's copy
		err = errors.Join(err, s.cleanup())
	}
	if left > 0 {
		err = errors.Join(err, fmt.Errorf("journal: close: %d operations not written: %w", left, ErrDegraded))
	}
	return err
}

// Degraded reports whether the store cannot write to disk, and why.
func (s *Store) Degraded() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.degraded {
		return false, nil
	}
	return true, fmt.Errorf("%w: %w", ErrDegraded, s.degErr)
}

// CommitAge is how long the commit in flight has been inside the disk
// (write and fsync), in real time; 0 when the committer is not writing. A
// hung disk shows as a CommitAge that keeps growing: the daemon's watchdog
// reads it.
func (s *Store) CommitAge() time.Duration {
	start := s.commitStart.Load()
	if start == 0 {
		return 0
	}
	return max(time.Since(time.Unix(0, start)), time.Nanosecond)
}

// Recovered describes the damaged database Open replaced, or is nil.
func (s *Store) Recovered() *Recovery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recovered
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Stats returns the store's figures.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	st := Stats{
		Records:  s.lastSeq - s.anchorSeq,
		Pending:  len(s.entries),
		Degraded: s.degraded,
		Slow:     s.slow,
		Backlog:  len(s.queue) + len(s.lane),
		Commits:  s.commits,
		Dropped:  s.dropped,
	}
	s.mu.Unlock()
	if fi, err := os.Stat(s.path); err == nil {
		st.Bytes = fi.Size()
	}
	return st
}

// signal wakes the goroutine waiting on c without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
