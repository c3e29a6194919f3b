package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hallguard/hallguard/daemon/journal"
)

// exportJournal makes a journal file with one record and returns its path.
func exportJournal(t *testing.T) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "hallguard.db")
	s, err := journal.Open(db, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(journal.Record{Kind: "incident", Incident: "inc-1", Playbook: "fire", Data: json.RawMessage(`{"a":1}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return db
}

func export(t *testing.T, db, out string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run([]string{"journal", "export", "-config", filepath.Join("..", "..", "..", "configs", "demo.yaml"), "-file", db, "-format", "csv", "-o", out}, &stdout, &stderr)
	return code, stderr.String()
}

// TestJournalExportRefusesSymlinkAndWrites0600 (issue #12 §7): -o never
// writes through a symlink (a planted link to another file), and the
// archive it writes is readable by its owner alone, whatever the umask.
func TestJournalExportRefusesSymlinkAndWrites0600(t *testing.T) {
	db := exportJournal(t)
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "archive.csv")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if code, stderr := export(t, db, link); code == exitOK || !strings.Contains(stderr, "symlink") {
		t.Errorf("export -o through a symlink: exit %d, %q; want refused naming the symlink", code, stderr)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep me\n" {
		t.Errorf("the symlink's target was written: %q", b)
	}

	out := filepath.Join(dir, "real.csv")
	if code, stderr := export(t, db, out); code != exitOK {
		t.Fatalf("export -o: exit %d: %s", code, stderr)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if m := st.Mode().Perm(); m != 0o600 {
		t.Errorf("archive mode %o, want 600", m)
	}
	// An existing file with wider modes is narrowed too.
	wide := filepath.Join(dir, "wide.csv")
	if err := os.WriteFile(wide, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(wide, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stderr := export(t, db, wide); code != exitOK {
		t.Fatalf("export -o over a file: exit %d: %s", code, stderr)
	}
	if st, _ := os.Stat(wide); st.Mode().Perm() != 0o600 {
		t.Errorf("existing archive mode %o, want 600", st.Mode().Perm())
	}
}
