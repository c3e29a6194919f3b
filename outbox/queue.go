package outbox

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/hallguard/hallguard/daemon/engine"
)

// Message is one report, or one side record, waiting for its PUBACK.
type Message struct {
	// ID is the report id (engine.Report.ID), or SideRecord.ID, stable
	// across redelivery.
	ID     string
	Report engine.Report
	// Side, when set, makes the message a side record rather than a
	// report (Report is then empty).
	Side *SideRecord
	// Redelivered is set by a queue that replays messages it may have sent
	// before (a durable queue after a restart).
	Redelivered bool
	// NotDurable is set by a durable queue that lets a report go before it
	// is on disk (the disk failing, or slower than its report budget): the
	// center is told, and the report is sent again once it is.
	NotDurable bool
}

// SideRecord is a message that is not an incident report but must not be
// lost either: a drill or walk-test record (§1.3), a review (§3.4), a CCTV
// bookmark request. It goes through the same queue as reports (durable
// with the journal's outbox: replayed after a restart), is published QoS 1,
// not retained, on Topic under the hall's root, and is retired on its
// PUBACK — never by the center's acknowledgement, which is for reports.
type SideRecord struct {
	// Kind is what it is, and the kind of its journal record: "drill",
	// "walk_test", "review", "cctv".
	Kind string `json:"kind"`
	// Key makes ID unique: each record sent is a message of its own.
	Key string `json:"key"`
	// Topic is relative to the hall's root (drills/<id>, reviews/<id>).
	Topic   string `json:"topic"`
	Payload []byte `json:"payload"`
	// Data is the journal record's data (JSON); Incident, Playbook and
	// Drill its other fields.
	Data     json.RawMessage `json:"data"`
	Incident string          `json:"incident,omitempty"`
	Playbook string          `json:"playbook,omitempty"`
	Drill    bool            `json:"drill,omitempty"`
}

// sidePrefix starts every side record's message id; a report id never
// does (it is <incident>.v<n>).
const sidePrefix = "record/"

// ID is the message id of the side record: record/<kind>/<key>.
func (r *SideRecord) ID() string { return sidePrefix + r.Kind + "/" + r.Key }

// IsSideID reports whether a message id is a side record's.
func IsSideID(id string) bool { return strings.HasPrefix(id, sidePrefix) }

// Queue holds the reports not yet acknowledged by the broker, oldest first.
// It is the source of truth for delivery: the publisher removes a report
// only after its PUBACK, and after a lost connection sends again from the
// oldest one left. Implementations must be safe for concurrent use: Push is
// called from the engine (with its lock held, so it must not wait for the
// network), the other methods from the publisher's sender.
type Queue interface {
	// Push appends m at the tail.
	Push(m Message)
	// Peek returns up to n of the oldest messages, oldest first, without
	// removing them. The slice is the caller's.
	Peek(n int) []Message
	// Ack removes the message with the given id. An unknown id is ignored.
	Ack(id string)
	// Len returns how many messages are held.
	Len() int
}

// MemQueue is the in-memory Queue: it holds everything until acknowledged,
// without bound, and loses it when the process ends.
type MemQueue struct {
	mu   sync.Mutex
	msgs []Message
}

var _ Queue = (*MemQueue)(nil)

// NewMemQueue returns an empty MemQueue.
func NewMemQueue() *MemQueue { return &MemQueue{} }

// Push appends m.
func (q *MemQueue) Push(m Message) {
	q.mu.Lock()
	q.msgs = append(q.msgs, m)
	q.mu.Unlock()
}

// Peek returns up to n of the oldest messages.
func (q *MemQueue) Peek(n int) []Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	n = max(0, min(n, len(q.msgs)))
	return append([]Message(nil), q.msgs[:n]...)
}

// Ack removes the oldest message with the given id.
func (q *MemQueue) Ack(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := range q.msgs {
		if q.msgs[i].ID == id {
			if i == 0 { // the usual case: O(1)
				q.msgs[0] = Message{} // let the report be collected
				q.msgs = q.msgs[1:]
			} else {
				q.msgs = slices.Delete(q.msgs, i, i+1)
			}
			break
		}
	}
	if len(q.msgs) == 0 {
		q.msgs = nil // drop the backing array after an outage
	}
}

// Len returns how many messages are held.
func (q *MemQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}

// Notifier is implemented by queues whose pushed messages become visible to
// Peek later than Push returns (a durable outbox: once committed to disk).
// A sender then also wakes on every value from Notify.
type Notifier interface {
	Notify() <-chan struct{}
}
