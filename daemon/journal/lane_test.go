package journal

import (
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/outbox"
)

// handoff pushes a robbery report and returns how long it took to become
// sendable (Peek returns it), in real time, and the journal seq of its
// report record once it is on disk.
func handoff(t *testing.T, s *Store, m outbox.Message) (time.Duration, uint64) {
	t.Helper()
	ob := s.Outbox()
	start := time.Now()
	ob.Push(m)
	for {
		if got := ob.Peek(1); len(got) == 1 && got[0].ID == m.ID {
			break
		}
		select {
		case <-ob.Notify():
		case <-time.After(10 * time.Millisecond):
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("report %s never became sendable", m.ID)
		}
	}
	took := time.Since(start)
	var seq uint64
	waitFor(t, "report record on disk", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, e := range s.entries {
			if e.msg.ID == m.ID && e.durable {
				seq = e.record
				return true
			}
		}
		return false
	})
	ob.Ack(m.ID)
	return took, seq
}

// TestReportLaneAheadOfBacklog: a robbery report pushed while 100,000
// journal records wait for the disk is committed ahead of them (§3.2:
// reported without delay), not behind them. The hand-off times with and
// without the backlog are printed, never asserted.
func TestReportLaneAheadOfBacklog(t *testing.T) {
	s := openT(t, dbPath(t), Options{})
	m := message(0)
	m.ID = "robbery-idle"
	idle, _ := handoff(t, s, m)

	const backlog = 100_000
	recs := make([]Record, backlog)
	for i := range recs {
		recs[i] = Record{Kind: "input", Data: json.RawMessage(`{"id":"door-1","active":true,"state":"active"}`)}
	}
	var seqs []uint64
	var appendErr error
	appended := make(chan struct{})
	go func() {
		defer close(appended)
		seqs, appendErr = s.Append(recs...) // as the recorder does with its backlog
	}()
	waitFor(t, "the backlog queued", func() bool { return s.Stats().Backlog > 0 })
	m = message(1)
	m.ID = "robbery-backlog"
	busy, reportSeq := handoff(t, s, m)
	<-appended
	if appendErr != nil {
		t.Fatal(appendErr)
	}
	t.Logf("robbery report hand-off (push to sendable): idle %s, behind a %d-record backlog %s", idle, backlog, busy)
	if last := seqs[len(seqs)-1]; reportSeq > last {
		t.Errorf("the report was committed as record %d, after the backlog's last record %d: it waited behind them", reportSeq, last)
	}
	if res, err := s.Verify(); err != nil || res.FirstBad != 0 {
		t.Errorf("Verify after the report lane: %+v, %v", res, err)
	}
}

// blockingDisk is a writeFault that hangs every commit while held, as a
// hung fsync does (not a failing one).
type blockingDisk struct {
	held    atomic.Bool
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newBlockingDisk() *blockingDisk {
	return &blockingDisk{entered: make(chan struct{}, 1), release: make(chan struct{})}
}

func (b *blockingDisk) fault() error {
	if b.held.Load() {
		select {
		case b.entered <- struct{}{}:
		default:
		}
		<-b.release
	}
	return nil
}

func (b *blockingDisk) unblock() { b.once.Do(func() { close(b.release) }) }

// TestHungDiskSendsReportFromMemoryFlaggedNotDurable: a commit that hangs
// (as opposed to failing) does not hold a report past ReportBudget: it is
// then sendable from memory, flagged not yet durable, and journal_slow is
// raised (OnSlow); when the disk comes back the report is written and the
// trouble cleared.
func TestHungDiskSendsReportFromMemoryFlaggedNotDurable(t *testing.T) {
	clk := clock.NewFake(t0)
	disk := newBlockingDisk()
	var mu sync.Mutex
	var slow []bool
	s := openT(t, dbPath(t), Options{Clock: clk, writeFault: disk.fault, ReportBudget: time.Second,
		OnSlow: func(active bool, _ error) {
			mu.Lock()
			slow = append(slow, active)
			mu.Unlock()
		}})
	t.Cleanup(disk.unblock)
	ob := s.Outbox()
	disk.held.Store(true)
	ob.Push(message(0))
	<-disk.entered // the commit hangs inside the disk
	if got := ob.Peek(10); len(got) != 0 {
		t.Fatalf("Peek = %v before the budget, want nothing (not on disk yet)", ids(got))
	}
	clk.Advance(999 * time.Millisecond)
	if got := ob.Peek(10); len(got) != 0 {
		t.Fatalf("Peek = %v before the budget ran out", ids(got))
	}
	clk.Advance(time.Millisecond)
	got := ob.Peek(10)
	if len(got) != 1 || !got[0].NotDurable {
		t.Fatalf("after the budget: Peek = %+v, want the report, flagged not durable", got)
	}
	// Reports pushed while the disk is slow go out at once.
	ob.Push(message(1))
	if got := ob.Peek(10); len(got) != 2 || !got[1].NotDurable {
		t.Fatalf("a report pushed while the disk is slow: Peek = %v, want it at once", ids(got))
	}
	mu.Lock()
	if len(slow) != 1 || !slow[0] {
		t.Errorf("OnSlow calls %v, want [true]", slow)
	}
	mu.Unlock()

	disk.held.Store(false)
	disk.unblock()
	waitFor(t, "the reports written", func() bool {
		got := ob.Peek(10)
		return len(got) == 2 && !got[0].NotDurable && !got[1].NotDurable
	})
	waitFor(t, "journal_slow cleared", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(slow) == 2 && !slow[1]
	})
	if st := s.Stats(); st.Degraded {
		t.Errorf("a slow disk is not a degraded one")
	}
	if res, err := s.Verify(); err != nil || res.FirstBad != 0 {
		t.Errorf("Verify: %+v, %v", res, errors.Unwrap(err))
	}
}

// TestCommitterStuckIsVisible: while a commit hangs, CommitAge says how
// long it has been in the disk, so the daemon's watchdog can tell; it is
// zero when the committer is idle.
func TestCommitterStuckIsVisible(t *testing.T) {
	disk := newBlockingDisk()
	s := openT(t, dbPath(t), Options{writeFault: disk.fault})
	t.Cleanup(disk.unblock)
	if d := s.CommitAge(); d != 0 {
		t.Fatalf("CommitAge of an idle store = %s, want 0", d)
	}
	disk.held.Store(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = s.Append(Record{Kind: "input", Data: json.RawMessage(`{}`)})
	}()
	<-disk.entered
	waitFor(t, "CommitAge grows", func() bool { return s.CommitAge() > 0 })
	disk.held.Store(false)
	disk.unblock()
	<-done
	waitFor(t, "CommitAge back to 0", func() bool { return s.CommitAge() == 0 })
}
