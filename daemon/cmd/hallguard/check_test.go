package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `hallguard check` prints every warning with its file, line and field and
// still passes; `check -strict` makes them errors and exits 2.
func TestCheckWarnsAndStrictRefuses(t *testing.T) {
	cfg := filepath.Join("..", "..", "config", "testdata", "warn-unsupervised.yaml")
	const first = "warn-unsupervised.yaml:11: inputs[0].contact: warning: panic input wired NO is not supervised"

	var out, errOut bytes.Buffer
	if rc := run([]string{"check", "-config", cfg}, &out, &errOut); rc != exitOK {
		t.Fatalf("check exit %d, want %d (warnings do not fail it)\n%s%s", rc, exitOK, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), first) || strings.Count(errOut.String(), ": warning: ") != 4 {
		t.Errorf("check printed:\n%s\nwant the 4 warnings, the first containing %q", errOut.String(), first)
	}
	if !strings.Contains(out.String(), ": ok: ") || !strings.Contains(out.String(), "4 warning(s)") {
		t.Errorf("check stdout %q, want ok with 4 warning(s)", out.String())
	}

	out.Reset()
	errOut.Reset()
	if rc := run([]string{"check", "-strict", "-config", cfg}, &out, &errOut); rc != exitConfig {
		t.Fatalf("check -strict exit %d, want %d\n%s%s", rc, exitConfig, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), first) || !strings.Contains(errOut.String(), "4 error(s)") {
		t.Errorf("check -strict printed:\n%s\nwant the warnings as 4 error(s)", errOut.String())
	}
	if strings.Contains(out.String(), ": ok: ") {
		t.Errorf("check -strict said ok: %q", out.String())
	}
}

// A config without warnings passes check -strict.
func TestCheckStrictPassesCleanConfig(t *testing.T) {
	clean := filepath.Join(t.TempDir(), "clean.yaml")
	writeFile(t, clean, `hall: {id: hall-1, name: Test hall, location: 1 Test Road}
backend: sim
playbooks_dir: `+mustAbs(t, filepath.Join("..", "..", "config", "testdata", "playbooks-min"))+`
roles: [{id: supervisor}, {id: center_manager}, {id: general_manager}]
inputs:
  - {id: panic-1, kind: panic, variant: armed, line: 1, contact: NC, stuck_after: 2m}
commands: {auth: none}
`)
	var out, errOut bytes.Buffer
	if rc := run([]string{"check", "-strict", "-config", clean}, &out, &errOut); rc != exitOK {
		t.Fatalf("check -strict exit %d, want ok\n%s%s", rc, out.String(), errOut.String())
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustAbs(t *testing.T, path string) string {
	t.Helper()
	p, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
