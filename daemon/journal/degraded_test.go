package journal

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/hallguard/hallguard/devices/clock"
)

// TestDegradedInjected forces write errors (as a full disk or a read-only
// state directory returns them, which chmod cannot do for root): reports
// keep flowing through Peek, the trouble is raised once, Append says
// ErrDegraded, and when writing works again the backlog is on disk.
func TestDegradedInjected(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"disk full", syscall.ENOSPC},
		{"read-only file system", syscall.EROFS},
		{"I/O error", syscall.EIO},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(t0)
			path := dbPath(t)
			var failing atomic.Bool
			var attempts atomic.Int64
			var trouble troubleLog
			opts := Options{
				Clock:     clk,
				OnTrouble: trouble.hook,
				writeFault: func() error {
					attempts.Add(1)
					if failing.Load() {
						return &fs.PathError{Op: "write", Path: path, Err: tc.err}
					}
					return nil
				},
			}
			s := openT(t, path, opts)
			ob := s.Outbox()
			for i := range 5 {
				ob.Push(message(i))
			}
			waitFor(t, "5 durable", func() bool { return len(ob.Peek(100)) == 5 })
			if _, err := s.Append(Record{Kind: "input"}); err != nil {
				t.Fatal(err)
			}

			failing.Store(true)
			ob.Push(message(5))
			waitFor(t, "degraded", func() bool { d, _ := s.Degraded(); return d })
			for i := 6; i < 60; i++ {
				ob.Push(message(i))
				// From memory, at once: no commit to wait for.
				if got := ob.Peek(100); len(got) != i+1 || got[i].ID != message(i).ID {
					t.Fatalf("push %d while degraded: Peek has %d", i, len(got))
				}
			}
			_, err := s.Append(Record{Kind: "trouble", Incident: "held"})
			if !errors.Is(err, ErrDegraded) || !errors.Is(err, tc.err) {
				t.Fatalf("Append while degraded: %v; want ErrDegraded and %v", err, tc.err)
			}
			if d, err := s.Degraded(); !d || !errors.Is(err, tc.err) {
				t.Fatalf("Degraded() = %v, %v", d, err)
			}
			if st := s.Stats(); !st.Degraded || st.Pending != 60 || st.Backlog == 0 {
				t.Fatalf("Stats = %+v", st)
			}
			// Acks while degraded: two durable ones, two held in memory.
			acked := []int{0, 1, 20, 21}
			for _, i := range acked {
				ob.Ack(message(i).ID)
			}
			// A retry that fails again raises nothing new.
			n := attempts.Load()
			clk.Advance(DefaultRetryEvery)
			waitFor(t, "a retry", func() bool { return attempts.Load() > n })
			waitFor(t, "the retry to end", func() bool { return clk.Pending() == 1 })
			if calls, _ := trouble.get(); !reflect.DeepEqual(calls, []bool{true}) {
				t.Fatalf("OnTrouble calls %v, want [true]", calls)
			}
			if d, _ := s.Degraded(); !d {
				t.Fatal("not degraded after a failed retry")
			}

			failing.Store(false)
			clk.Advance(DefaultRetryEvery)
			waitFor(t, "writing again", func() bool { d, _ := s.Degraded(); return !d })
			waitFor(t, "backlog written", func() bool { return s.Stats().Backlog == 0 })
			// The committer clears the state, then calls OnTrouble outside
			// its lock: wait for the call, not only for the state.
			waitFor(t, "OnTrouble(false)", func() bool { calls, _ := trouble.get(); return len(calls) >= 2 })
			calls, errs := trouble.get()
			if !reflect.DeepEqual(calls, []bool{true, false}) {
				t.Fatalf("OnTrouble calls %v, want [true false]", calls)
			}
			if !errors.Is(errs[0], ErrDegraded) || !errors.Is(errs[0], tc.err) || errs[1] != nil {
				t.Fatalf("OnTrouble errors %v", errs)
			}
			if _, err := s.Append(Record{Kind: "input"}); err != nil {
				t.Fatalf("Append after recovery: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			s = openT(t, path, Options{Clock: clk})
			var want []string
			for i := range 60 {
				if !slices.Contains(acked, i) {
					want = append(want, message(i).ID)
				}
			}
			if got := ids(s.Outbox().Peek(100)); !reflect.DeepEqual(got, want) {
				t.Fatalf("after reopen: pending %v\nwant %v", got, want)
			}
			recs, err := s.List(Filter{})
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, r := range recs {
				if r.Kind != "report" {
					kinds = append(kinds, r.Kind+":"+r.Incident)
				}
			}
			if !reflect.DeepEqual(kinds, []string{"input:", "trouble:held", "input:"}) {
				t.Fatalf("journal records besides reports: %v", kinds)
			}
			if len(recs) != 63 {
				t.Fatalf("%d records, want 60 reports and 3 others", len(recs))
			}
			if res, err := s.Verify(); err != nil || res.FirstBad != 0 || res.Records != 63 {
				t.Fatalf("Verify = %+v, %v", res, err)
			}
		})
	}
}

func TestDegradedBacklogLimit(t *testing.T) {
	clk := clock.NewFake(t0)
	var failing atomic.Bool
	failing.Store(true)
	s := openT(t, dbPath(t), Options{Clock: clk, MaxBacklog: 3, writeFault: func() error {
		if failing.Load() {
			return syscall.ENOSPC
		}
		return nil
	}})
	s.Outbox().Push(message(0))
	waitFor(t, "degraded", func() bool { d, _ := s.Degraded(); return d })
	for i := range 3 {
		if _, err := s.Append(Record{Kind: "input"}); !errors.Is(err, ErrDegraded) || errors.Is(err, ErrBacklogFull) {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if _, err := s.Append(Record{Kind: "input"}); !errors.Is(err, ErrBacklogFull) || !errors.Is(err, ErrDegraded) {
		t.Fatalf("append beyond MaxBacklog: %v", err)
	}
	// Reports are never dropped.
	for i := 1; i < 50; i++ {
		s.Outbox().Push(message(i))
	}
	if n := len(s.Outbox().Peek(100)); n != 50 {
		t.Fatalf("%d reports peekable, want 50", n)
	}
	if st := s.Stats(); st.Dropped != 1 {
		t.Fatalf("Stats = %+v", st)
	}
	failing.Store(false)
	clk.Advance(DefaultRetryEvery)
	waitFor(t, "writing again", func() bool { d, _ := s.Degraded(); return !d && s.Stats().Backlog == 0 })
	if st := s.Stats(); st.Records != 53 {
		t.Fatalf("Stats after recovery = %+v, want 50 reports and 3 records", st)
	}
}

// TestOpenUnwritableDegrades: a state directory that cannot be created (a
// file is in the way; a read-only or full disk behaves the same) starts
// the store degraded, from memory, and it opens the database once it can.
func TestOpenUnwritableDegrades(t *testing.T) {
	clk := clock.NewFake(t0)
	dir := t.TempDir()
	blocker := filepath.Join(dir, "state")
	if err := os.WriteFile(blocker, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(blocker, "hallguard.db")
	var trouble troubleLog
	s := openT(t, path, Options{Clock: clk, OnTrouble: trouble.hook})
	if d, err := s.Degraded(); !d || !errors.Is(err, ErrDegraded) {
		t.Fatalf("Degraded() = %v, %v", d, err)
	}
	ob := s.Outbox()
	for i := range 5 {
		ob.Push(message(i))
	}
	if n := len(ob.Peek(10)); n != 5 {
		t.Fatalf("%d peekable, want 5 from memory", n)
	}
	if _, err := s.Append(Record{Kind: "config"}); !errors.Is(err, ErrDegraded) {
		t.Fatalf("Append: %v", err)
	}
	if _, err := s.List(Filter{}); !errors.Is(err, ErrDegraded) {
		t.Fatalf("List without a database: %v", err)
	}
	ob.Ack(message(0).ID)
	clk.Advance(DefaultRetryEvery) // still in the way
	waitFor(t, "the retry to end", func() bool { return clk.Pending() == 1 })
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	clk.Advance(DefaultRetryEvery)
	waitWritingAgain(t, s, "the database", &trouble)
	s = openT(t, path, Options{Clock: clk})
	want := []string{message(1).ID, message(2).ID, message(3).ID, message(4).ID}
	if got := ids(s.Outbox().Peek(10)); !reflect.DeepEqual(got, want) {
		t.Fatalf("pending %v, want %v", got, want)
	}
	if res, err := s.Verify(); err != nil || res.FirstBad != 0 || res.Records != 6 {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
}
