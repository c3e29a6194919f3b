package journal

import (
	"fmt"
	"slices"
	"time"

	"github.com/hallguard/hallguard/outbox"
)

// Outbox is the durable outbox.Queue: reports are written to disk before they
// are sent and retired only on PUBACK.
//
//   - Push hands the report to the committer and returns at once (it runs
//     under the engine's lock). The next group commit writes the report
//     whole, with a "report" journal record, in one transaction.
//   - Peek returns only reports already on disk, oldest first (push order,
//     which is the engine's report seq order). Notify fires after each
//     commit, so the publisher knows when to Peek again.
//   - Ack retires a report durably, batched like every write. An Ack lost
//     in a crash makes the report pending again after the restart: it is
//     sent twice (same id, the center de-duplicates), never lost.
//   - After a restart, Open loads the unacknowledged reports in order;
//     Peek returns them with Redelivered set and their original id, seq and
//     occurred_at (they are stored whole).
//   - While the store is degraded (disk full, read-only), pushed reports are
//     kept in memory and Peek returns them at once; they are written, in
//     order, when the disk works again.
type Outbox struct{ s *Store }

var _ outbox.Queue = (*Outbox)(nil)

// Outbox returns the store's outbox.
func (s *Store) Outbox() *Outbox { return s.outbox }

// Push appends m at the tail without waiting for the disk.
func (o *Outbox) Push(m outbox.Message) {
	s := o.s
	if s.readOnly {
		return // OpenReadOnly serves inspection only
	}
	now := s.clk.Now()
	// Encoded here, under the caller's lock: the stored report is the
	// report as it was pushed, whatever the engine does with it next.
	var b []byte
	var err error
	var side *Record
	if m.Side != nil {
		sd := *m.Side
		m.Side = &sd
		side, err = sideRecord(&sd, now)
	} else {
		b, err = encodeJSON(m.Report)
	}
	e := &entry{msg: m, report: b, side: side, pushedAt: now}
	if err != nil && side != nil {
		// The record is stored without its data; the message goes whole.
		s.log.Error("side record's data not journalled", "record", m.ID, "err", err)
		err = nil
	}
	s.mu.Lock()
	s.entries = append(s.entries, e)
	if err != nil || s.closed {
		// It cannot be written (a report time out of range, or the store is
		// closed): it is still delivered, from memory.
		e.visible, e.msg.NotDurable, e.memOnly = true, true, true
		logAfter := s.closed && !s.loggedAfter
		s.loggedAfter = s.loggedAfter || s.closed
		s.mu.Unlock()
		signal(s.notify)
		if err != nil {
			s.log.Error("report cannot be stored: sent from memory only", "report", m.ID, "err", err)
		} else if logAfter {
			s.log.Error("report pushed after close: sent from memory only", "report", m.ID)
		}
		return
	}
	s.lane = append(s.lane, &op{kind: opPush, e: e})
	// While the disk is failing or too slow, reports go from memory at once.
	fromMemory := s.degraded || s.slow
	e.visible, e.msg.NotDurable = fromMemory, fromMemory
	if !fromMemory {
		e.budget = s.clk.AfterFunc(s.opts.ReportBudget, func() { s.budgetExpired(e) })
	}
	degraded := s.degraded
	s.mu.Unlock()
	if fromMemory {
		signal(s.notify)
	}
	if !degraded {
		signal(s.wake)
	}
}

// sideRecord is the journal record of a side record: its kind, with its
// data (null, and logged by the caller, if the data is not JSON).
func sideRecord(sd *outbox.SideRecord, now time.Time) (*Record, error) {
	r, err := prepare(Record{Time: now, Kind: sd.Kind, Incident: sd.Incident, Playbook: sd.Playbook, Drill: sd.Drill, Data: sd.Data}, now)
	if err == nil {
		return &r, nil
	}
	r, err2 := prepare(Record{Time: now, Kind: sd.Kind, Incident: sd.Incident, Playbook: sd.Playbook, Drill: sd.Drill}, now)
	if err2 != nil {
		return nil, err2
	}
	return &r, fmt.Errorf("journal: record %s: data not stored: %w", sd.Kind, err)
}

// Peek returns up to n of the oldest messages that may be sent, oldest
// first, without removing them. Normally these are the ones on disk; a
// report pushed but not yet committed is not returned (nor any after it).
func (o *Outbox) Peek(n int) []outbox.Message {
	s := o.s
	s.mu.Lock()
	defer s.mu.Unlock()
	n = max(0, min(n, len(s.entries)))
	out := make([]outbox.Message, 0, n)
	for _, e := range s.entries {
		if len(out) == n || !e.visible {
			break
		}
		out = append(out, e.msg)
	}
	return out
}

// Ack retires the oldest message with the given id. An unknown id is
// ignored.
func (o *Outbox) Ack(id string) {
	s := o.s
	if s.readOnly {
		return
	}
	now := s.clk.Now()
	s.mu.Lock()
	i := slices.IndexFunc(s.entries, func(e *entry) bool { return e.msg.ID == id })
	if i < 0 {
		s.mu.Unlock()
		return
	}
	e := s.entries[i]
	if i == 0 {
		s.entries[0] = nil
		s.entries = s.entries[1:]
	} else {
		s.entries = slices.Delete(s.entries, i, i+1)
	}
	if len(s.entries) == 0 {
		s.entries = nil
	}
	e.acked = true
	// Not yet durable: its push op writes the retirement too.
	queued := e.durable && !s.closed
	if queued {
		s.lane = append(s.lane, &op{kind: opAck, e: e, at: now})
	}
	degraded := s.degraded
	s.mu.Unlock()
	if queued && !degraded {
		signal(s.wake)
	}
}

// Len returns how many messages are held: every report pushed and not
// acknowledged, including those not yet on disk.
func (o *Outbox) Len() int {
	s := o.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// Notify returns a channel (buffer 1) that receives, without blocking the
// store, after every commit and whenever a report becomes peekable from
// memory. Several events may collapse into one receive. The publisher's
// sender selects on it and then Peeks; it is never closed.
func (o *Outbox) Notify() <-chan struct{} { return o.s.notify }

// OldestPending returns the Created time of the oldest report not
// acknowledged (the time it was pushed when Created is zero), or the zero
// time when there is none: the "age of the oldest pending report" metric.
func (o *Outbox) OldestPending() time.Time {
	s := o.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.entries) == 0 {
		return time.Time{}
	}
	e := s.entries[0]
	if !e.msg.Report.Created.IsZero() {
		return e.msg.Report.Created
	}
	return e.pushedAt
}
