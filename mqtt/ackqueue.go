package mqtt

import (
	"sync"
	"time"

	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/outbox"
)

// CenterAckQueue gives end-to-end delivery: a report leaves it only when
// the monitoring center says it received it, not when the broker did. It
// wraps the real queue (durable or not) and sits between it and the
// publisher:
//
//   - the publisher's Ack (on PUBACK) only marks the report as at the
//     broker: it drops out of Peek, so it is not sent again at once;
//   - CenterAck (the center's acknowledgement by report id) retires it from
//     the real queue, for good;
//   - a report at the broker but not acknowledged by the center within
//     Timeout comes back into Peek, marked redelivered, and is sent again;
//   - after a restart, the real (durable) queue still holds it.
type CenterAckQueue struct {
	inner   outbox.Queue
	timeout time.Duration
	clk     clock.Clock

	mu      sync.Mutex
	atBrk   map[string]time.Time // report id -> when the broker acknowledged it
	resent  map[string]bool      // ids to mark redelivered
	notify  chan struct{}
	stopped chan struct{}
	// forwarding is the goroutine that passes the real queue's
	// notifications on; Close waits for it.
	forwarding sync.WaitGroup
}

var (
	_ outbox.Queue    = (*CenterAckQueue)(nil)
	_ outbox.Notifier = (*CenterAckQueue)(nil)
)

// NewCenterAckQueue wraps inner. Timeout is how long the center has to
// acknowledge a report before it is sent again.
func NewCenterAckQueue(inner outbox.Queue, timeout time.Duration, clk clock.Clock) *CenterAckQueue {
	if clk == nil {
		clk = clock.Real{}
	}
	q := &CenterAckQueue{inner: inner, timeout: timeout, clk: clk, atBrk: map[string]time.Time{},
		resent: map[string]bool{}, notify: make(chan struct{}, 1), stopped: make(chan struct{})}
	if n, ok := inner.(outbox.Notifier); ok {
		q.forwarding.Go(func() { forward(n, q.notify, q.stopped) })
	}
	return q
}

// Push appends m to the real queue.
func (q *CenterAckQueue) Push(m outbox.Message) { q.inner.Push(m) }

// Peek returns the oldest reports not now waiting at the broker for the
// center, with the timed-out ones due again.
func (q *CenterAckQueue) Peek(n int) []outbox.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clk.Now()
	all := q.inner.Peek(q.inner.Len())
	out := make([]outbox.Message, 0, n)
	for _, m := range all {
		if len(out) == n {
			break
		}
		if at, waiting := q.atBrk[m.ID]; waiting {
			if now.Sub(at) < q.timeout {
				continue
			}
			delete(q.atBrk, m.ID) // the center did not answer: send again
			q.resent[m.ID] = true
		}
		if q.resent[m.ID] {
			m.Redelivered = true
		}
		out = append(out, m)
	}
	return out
}

// Ack records that the broker acknowledged the report. The center's
// acknowledgement is still awaited; a timer brings it back if none comes.
// A side record is retired at once.
func (q *CenterAckQueue) Ack(id string) {
	if outbox.IsSideID(id) {
		q.inner.Ack(id) // side records are retired on PUBACK: the center acknowledges reports
		return
	}
	q.mu.Lock()
	q.atBrk[id] = q.clk.Now()
	q.mu.Unlock()
	q.clk.AfterFunc(q.timeout, func() { signal(q.notify) })
}

// CenterAck retires the report the center acknowledged. It reports
// whether the report was still held.
func (q *CenterAckQueue) CenterAck(id string) bool {
	held := false
	for _, m := range q.inner.Peek(q.inner.Len()) {
		if m.ID == id {
			held = true
			break
		}
	}
	q.mu.Lock()
	delete(q.atBrk, id)
	delete(q.resent, id)
	q.mu.Unlock()
	if held {
		q.inner.Ack(id)
	}
	return held
}

// Len counts every report the center has not acknowledged.
func (q *CenterAckQueue) Len() int { return q.inner.Len() }

// AwaitingCenter counts reports at the broker, awaiting the center.
func (q *CenterAckQueue) AwaitingCenter() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.atBrk)
}

// Notify wakes the publisher when reports become due (new on disk, or a
// center acknowledgement timed out).
func (q *CenterAckQueue) Notify() <-chan struct{} { return q.notify }

// Close stops the forwarding goroutine and waits for it.
func (q *CenterAckQueue) Close() {
	q.mu.Lock()
	select {
	case <-q.stopped:
	default:
		close(q.stopped)
	}
	q.mu.Unlock()
	q.forwarding.Wait()
}
