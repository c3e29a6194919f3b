//go:build unix

package sim

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestControlSocketIsPrivateFromBind: with the most permissive umask the
// socket is 0600 as bind(2) creates it, no chmod needed, and the process
// umask is left as it was (issue #12 §7).
func TestControlSocketIsPrivateFromBind(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "sim.sock")
	l, err := listenPrivate(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := st.Mode().Perm(); m != 0o600 {
		t.Errorf("socket mode %o as created, want 600", m)
	}
	if now := syscall.Umask(0); now != 0 {
		t.Errorf("umask left at %o, want 0 (as before)", now)
	}
}
