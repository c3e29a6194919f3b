package test

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the binary hallguardBin built, so repeated runs (make
// soak) leave nothing behind in the temporary directory.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}
