//go:build !unix

package sim

import (
	"net"
	"os"
)

// listenPrivate creates the unix socket at path and restricts it to its
// owner (no umask here).
func listenPrivate(path string) (net.Listener, error) {
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}
