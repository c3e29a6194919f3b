package journal_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/daemon/journal"
)

// oldArchive copies testdata/report-07a6525.db.gz, unzipped, into a fresh
// directory: a journal written at commit 07a6525, before engine.Report had
// json tags. It holds a config record and two reports of one incident
// (versions 1 and 2, every field set) not yet acknowledged by the broker.
func oldArchive(t *testing.T) string {
	t.Helper()
	f, err := os.Open("testdata/report-07a6525.db.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "journal.db")
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkOldReport asserts the fields whose names changed with the json tags
// (and so are read by engine.Report's compatibility decode), and a few that
// encoding/json matches without regard to case.
func checkOldReport(t *testing.T, where string, r engine.Report, version int) {
	t.Helper()
	at := func(s int) time.Time { return time.Date(2026, 12, 1, 9, 0, s, 500, time.UTC) }
	if r.Incident != "inc-1" || r.Version != version || r.Playbook != "robbery" || r.Hall.ID != "hall-7" || r.Hall.Region != "north" ||
		!r.OccurredAt.Equal(at(1)) || !r.Created.Equal(at(5)) || !r.Trigger.Equal(at(6)) ||
		r.ImpactDetail == nil || r.ImpactDetail.CashVouchers != "c" || r.Type.ZH != "抢劫" ||
		len(r.Steps) != 1 || r.Steps[0].Text.EN != "call the police" || !r.Steps[0].At.Equal(at(3)) ||
		r.Escalation == nil || r.Escalation.After != 90*time.Second || r.Timeline == nil || r.Review == nil {
		t.Errorf("%s: old report v%d read as %+v", where, version, r)
	}
}

// An archive written in the old encoding still verifies (the chain hashes
// the stored bytes, never a re-encoding), its report records still read,
// and so do its outbox entries, replayed at Open.
func TestOldArchiveVerifiesAndReads(t *testing.T) {
	path := oldArchive(t)
	ro, err := journal.OpenReadOnly(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ro.Verify()
	if err != nil || res.FirstBad != 0 || res.Records != 3 {
		t.Errorf("verify the old archive: %+v, %v; want 3 records, none bad", res, err)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}

	st, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var got []engine.Report
	if err := st.Reports(0, func(r engine.Report) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d reports read from the old archive, want 2", len(got))
	}
	for i, r := range got {
		checkOldReport(t, "journal", r, i+1)
	}
	pending := st.Outbox().Peek(10)
	if len(pending) != 2 {
		t.Fatalf("%d outbox entries replayed from the old archive, want 2", len(pending))
	}
	for i, m := range pending {
		checkOldReport(t, "outbox", m.Report, i+1)
	}
}

// A Record encodes as its export line (`hallguard journal show`): "seq",
// "time", "kind", … and the data as stored.
func TestRecordJSONIsTheExportLine(t *testing.T) {
	ro, err := journal.OpenReadOnly(oldArchive(t), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var export bytes.Buffer
	if err := ro.ExportJSONL(&export, journal.Filter{}); err != nil {
		t.Fatal(err)
	}
	recs, err := ro.List(journal.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(export.String(), "\n"), "\n")
	if len(lines) != len(recs) || len(recs) != 3 {
		t.Fatalf("%d export lines, %d records; want 3", len(lines), len(recs))
	}
	for i, r := range recs {
		b, err := json.Marshal(r)
		if err != nil || string(b) != lines[i] {
			t.Errorf("record %d encodes as\n%s (%v)\nexport line\n%s", r.Seq, b, err, lines[i])
		}
	}
}
