package journal

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/outbox"
)

var t0 = time.Date(2025, 3, 1, 8, 15, 2, 500_000_000, time.UTC)

// openT opens a store, closed at the end of the test.
func openT(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func dbPath(t testing.TB) string { return filepath.Join(t.TempDir(), "hallguard.db") }

// report returns report number i of a test incident.
func report(i int) engine.Report {
	at := t0.Add(time.Duration(i) * time.Second)
	return engine.Report{
		ID:         fmt.Sprintf("inc-%03d.v%d", i/3, i%3+1),
		Incident:   fmt.Sprintf("inc-%03d", i/3),
		Seq:        uint64(i + 1),
		Version:    i%3 + 1,
		Event:      engine.EventUpdate,
		Playbook:   "robbery",
		Section:    "§4.3",
		State:      engine.StateActive,
		Drill:      i%5 == 0,
		Silent:     true,
		Hall:       config.Hall{ID: "hall-1", Name: "第一营业厅", Location: "1 Test Road"},
		OccurredAt: at.Add(-time.Minute).In(time.FixedZone("CST", 8*3600)),
		Type:       config.Text{ZH: "抢劫", EN: "robbery"},
		Impact:     engine.Unknown,
		Measures:   []engine.Measure{{At: at, Kind: "output", Text: "police link <on> & \"quoted\"", By: "daemon"}},
		Steps:      []engine.StepState{{ID: "s1", Section: "§4.3(b)1", Text: config.Text{EN: "stay calm"}, Done: i%2 == 0, At: at}},
		Created:    at,
		Trigger:    at.Add(-time.Millisecond),
	}
}

func message(i int) outbox.Message {
	r := report(i)
	return outbox.Message{ID: r.ID + "#" + strconv.Itoa(i), Report: r}
}

// waitFor polls cond until it holds (the store works in its own goroutine);
// the long deadline only catches a hang, it is not a timing assertion.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// auditHash recomputes a record's hash from its exported text fields, as
// an auditor with other tools would (independent of hashRecord).
func auditHash(fields ...string) string {
	var b []byte
	for _, f := range append([]string{"hallguard.journal.v1"}, fields...) {
		b = append(b, strconv.Itoa(len(f))...)
		b = append(b, ':')
		b = append(b, f...)
		b = append(b, ',')
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// troubleLog records OnTrouble calls.
type troubleLog struct {
	mu    sync.Mutex
	calls []bool
	errs  []error
}

func (l *troubleLog) hook(active bool, err error) {
	l.mu.Lock()
	l.calls = append(l.calls, active)
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

func (l *troubleLog) get() ([]bool, []error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]bool(nil), l.calls...), append([]error(nil), l.errs...)
}

// waitWritingAgain waits until s writes to disk again, its backlog written
// (what names the wait), checks that OnTrouble was called once to raise the
// trouble and once to clear it, and closes s.
func waitWritingAgain(t *testing.T, s *Store, what string, trouble *troubleLog) {
	t.Helper()
	waitFor(t, what, func() bool { d, _ := s.Degraded(); return !d && s.Stats().Backlog == 0 })
	if calls, _ := trouble.get(); !reflect.DeepEqual(calls, []bool{true, false}) {
		t.Fatalf("OnTrouble calls %v, want [true false]", calls)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
