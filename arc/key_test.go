package arc

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeyFileMustBePrivate: the AES key is read from a file only its
// owner can read; a group- or world-readable key is refused, as is a key
// of the wrong size.
func TestKeyFileMustBePrivate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hex128 := strings.Repeat("0f", 16)
	for _, tc := range []struct {
		name, text string
		mode       os.FileMode
		size       int
		err        error
	}{
		{"aes128", hex128 + "\n", 0o600, 16, nil},
		{"aes192", strings.Repeat("AB", 24), 0o400, 24, nil},
		{"aes256", strings.Repeat("01", 32) + "\r\n", 0o600, 32, nil},
		{"group readable", hex128, 0o640, 0, ErrKeyExposed},
		{"world readable", hex128, 0o604, 0, ErrKeyExposed},
		{"wrong size", strings.Repeat("01", 20), 0o600, 0, ErrKeySize},
		{"not hex", strings.Repeat("zz", 16), 0o600, 0, ErrKeySize},
	} {
		k, err := LoadKey(write(tc.name, tc.text, tc.mode))
		if !errors.Is(err, tc.err) || len(k) != tc.size {
			t.Errorf("%s: key of %d bytes, err %v; want %d bytes, err %v", tc.name, len(k), err, tc.size, tc.err)
		}
	}
	if _, err := LoadKey(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing key file: no error")
	}
}
