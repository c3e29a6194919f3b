package test

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestJournalCLIFindsTheLocalListener: with the daemon holding the journal,
// `hallguard journal` reads it through the daemon's API on the local
// listener (-local, else http.local_listen), not the operations listener.
func TestJournalCLIFindsTheLocalListener(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml")
	db := filepath.Join(d.stateDir, "hallguard.db")
	out, err := d.hg("journal", "verify", "-config", d.config, "-file", db, "-local", d.local)
	if err != nil || !strings.Contains(out, ": ok: ") {
		t.Errorf("journal verify through the local listener: %v\n%s", err, out)
	}
	out, err = d.hg("journal", "list", "-config", d.config, "-file", db, "-local", d.local, "-kind", "config")
	if err != nil || !strings.Contains(out, "config") {
		t.Errorf("journal list through the local listener: %v\n%s", err, out)
	}
	// The operations listener has no journal API.
	if out, err := d.hg("journal", "list", "-config", d.config, "-file", db, "-local", d.http); err == nil {
		t.Errorf("journal list against http.listen worked: %s", out)
	}
}
