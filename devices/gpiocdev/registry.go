package gpiocdev

import (
	"errors"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/hallguard/hallguard/devices"
)

// errBackendClosed is returned when opening a line on a closed backend.
var errBackendClosed = errors.New("backend closed")

// registry tracks the lines a backend has open, so that Close can release
// them all.
type registry struct {
	mu     sync.Mutex
	closed bool
	open   map[io.Closer]struct{}
}

// add records c; it fails once the registry is closed.
func (r *registry) add(c io.Closer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errBackendClosed
	}
	if r.open == nil {
		r.open = map[io.Closer]struct{}{}
	}
	r.open[c] = struct{}{}
	return nil
}

func (r *registry) remove(c io.Closer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.open, c)
}

func (r *registry) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// closeAll closes every open line, outputs first so they reach their
// fail-safe levels as early as possible. It is safe to call more than once.
func (r *registry) closeAll() error {
	r.mu.Lock()
	r.closed = true
	open := slices.Collect(maps.Keys(r.open))
	r.mu.Unlock()
	return devices.CloseLines(open)
}
