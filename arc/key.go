package arc

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Key file errors.
var (
	ErrKeyExposed = errors.New("arc: key file is readable by group or others (chmod 0600 or 0400)")
	ErrKeySize    = errors.New("arc: key must be 32, 48 or 64 hex digits (AES-128, -192 or -256)")
)

// LoadKey reads an AES key, written as hex digits, from a file that only
// its owner may read: a key others can read is refused, not used.
func LoadKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("arc: key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("arc: key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is %04o", ErrKeyExposed, path, st.Mode().Perm())
	}
	buf := make([]byte, 256)
	n, _ := f.Read(buf)
	k, err := hex.DecodeString(strings.TrimSpace(string(buf[:n])))
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrKeySize, path)
	}
	switch len(k) {
	case 16, 24, 32:
		return k, nil
	}
	return nil, fmt.Errorf("%w: %s holds %d bytes", ErrKeySize, path, len(k))
}
