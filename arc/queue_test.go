package arc

import (
	"path/filepath"
	"testing"
	"time"
)

// TestQueueSurvivesReopen: what was pushed and not retired is pending
// again, oldest first, after the file is closed and opened (a restart).
func TestQueueSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "arc.db")
	q, err := OpenBoltQueue(path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC)
	var keys []uint64
	for i, id := range []string{"a", "b", "c"} {
		ev := Event{ID: id, Format: IDContactID, Qualifier: 1, Code: 122, Area: 1, Zone: i + 1, Created: at}
		k, err := q.Push(ev)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if keys[0] == 0 || keys[0] >= keys[1] || keys[1] >= keys[2] {
		t.Fatalf("keys not increasing from 1: %v", keys)
	}
	if err := q.Retire(keys[1]); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q, err = OpenBoltQueue(path)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	got, err := q.Pending()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "c" || got[0].Key != keys[0] || got[1].Zone != 3 || !got[0].Created.Equal(at) {
		t.Fatalf("pending after reopen: %+v", got)
	}
	if n := q.Len(); n != 2 {
		t.Errorf("Len %d, want 2", n)
	}
	// A key that is not there is not an error: a retire may repeat.
	if err := q.Retire(999); err != nil {
		t.Errorf("retire unknown key: %v", err)
	}
}

// TestQueueReportMark: a new file has no mark; Push raises it to its
// event's report in the same write, never lowers it; MarkReports sets it
// either way; it survives a reopen.
func TestQueueReportMark(t *testing.T) {
	path := filepath.Join(t.TempDir(), "arc.db")
	q, err := OpenBoltQueue(path)
	if err != nil {
		t.Fatal(err)
	}
	mark := func(want uint64, wantOK bool) {
		t.Helper()
		got, ok, err := q.ReportMark()
		if err != nil || got != want || ok != wantOK {
			t.Fatalf("ReportMark = %d, %v, %v; want %d, %v", got, ok, err, want, wantOK)
		}
	}
	mark(0, false)
	for _, seq := range []uint64{7, 5, 0} {
		if _, err := q.Push(Event{ID: "r", Format: IDContactID, Report: seq}); err != nil {
			t.Fatal(err)
		}
		mark(7, true)
	}
	if err := q.MarkReports(3); err != nil {
		t.Fatal(err)
	}
	mark(3, true)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if q, err = OpenBoltQueue(path); err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	mark(3, true)
}
