//go:build unix

package sim

import (
	"net"
	"sync"
	"syscall"
)

// umaskMu serialises the umask changes of this package.
var umaskMu sync.Mutex

// listenPrivate creates the unix socket at path with mode 0600 from the
// start: bind(2) creates it under a umask of 0177, so there is no moment
// at which another user could connect before a chmod (issue #12 §7). The
// umask is the process's: it is restored at once, and the daemon creates
// the socket when nothing else of it creates files.
func listenPrivate(path string) (net.Listener, error) {
	umaskMu.Lock()
	defer umaskMu.Unlock()
	old := syscall.Umask(0o177)
	defer syscall.Umask(old)
	return net.Listen("unix", path)
}
