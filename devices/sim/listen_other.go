//go:build !unix

package sim

import "net"

// listenPrivate binds a unix socket; where there is no umask, the
// directory's permissions protect it.
func listenPrivate(path string) (net.Listener, error) { return net.Listen("unix", path) }
