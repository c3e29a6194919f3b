//go:build unix

package sim

import (
	"net"
	"sync"
	"syscall"
)

// umaskMu serialises the umask change. The umask is process state, so the
// lock that guards it is package state too: the one deliberate global here.
var umaskMu sync.Mutex

// listenPrivate binds a unix socket that is created with mode 0600. The
// umask is narrowed only around the bind, so the file never exists with
// wider permissions.
func listenPrivate(path string) (net.Listener, error) {
	umaskMu.Lock()
	defer umaskMu.Unlock()
	old := syscall.Umask(0o177)
	defer syscall.Umask(old)
	return net.Listen("unix", path)
}
