package daemon

import (
	"sync"

	"github.com/hallguard/hallguard/devices"
)

// handoffSize is how many edges one input's hand-off holds between the
// backend's Watch callback and conditioning. The backend buffers too (the
// kernel's event buffer and its own queue).
const handoffSize = 512

// handoff carries one input's edges from the backend's Watch callback to
// conditioning. put never blocks (a backend's callback must not); when the
// buffer is full it drops the oldest edge, never the newest, because the
// newest carries the line's current level (§4.4: a detector that chatters
// and then latches in alarm must end in alarm). A dropped edge is folded
// into the Lost of the edge after it, so conditioning sees exactly where the
// gap is and can infer an activation hidden in it.
type handoff struct {
	mu      sync.Mutex
	buf     []devices.Event // ring of len handoffSize (or the size asked for)
	head, n int
	closed  bool
	// dropped is set by a drop and cleared by dropsSince: the consumer then
	// re-reads the line once it has caught up.
	dropped bool
	wake    chan struct{}
}

func newHandoff(size int) *handoff {
	if size < 2 {
		size = 2
	}
	return &handoff{buf: make([]devices.Event, size), wake: make(chan struct{}, 1)}
}

// put queues ev. It reports whether an older edge had to be dropped for it.
func (h *handoff) put(ev devices.Event) (dropped bool) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return false
	}
	if h.n == len(h.buf) {
		old := h.buf[h.head]
		h.head = (h.head + 1) % len(h.buf)
		h.n--
		// The edge now oldest inherits the gap: old itself and what was
		// already lost before it.
		h.buf[h.head].Lost += old.Lost + 1
		h.dropped, dropped = true, true
	}
	h.buf[(h.head+h.n)%len(h.buf)] = ev
	h.n++
	h.mu.Unlock()
	nudge(h.wake)
	return dropped
}

// get returns the oldest queued edge, waiting for one; ok is false once the
// hand-off is closed and empty. caughtUp is true when ev was the last one
// queued and an edge was dropped since the previous caughtUp: the consumer
// should then re-read the line.
func (h *handoff) get() (ev devices.Event, caughtUp, ok bool) {
	for {
		h.mu.Lock()
		if h.n > 0 {
			ev = h.buf[h.head]
			h.buf[h.head] = devices.Event{}
			h.head = (h.head + 1) % len(h.buf)
			h.n--
			if h.n == 0 && h.dropped {
				h.dropped, caughtUp = false, true
			}
			h.mu.Unlock()
			return ev, caughtUp, true
		}
		if h.closed {
			h.mu.Unlock()
			return devices.Event{}, false, false
		}
		h.mu.Unlock()
		<-h.wake
	}
}

// close ends get once the queued edges are taken; later puts are ignored.
func (h *handoff) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	nudge(h.wake)
}
