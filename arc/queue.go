package arc

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Queue is the DC-09 path's durable lane: an event is pushed before it is
// sent and retired only on a receiver's ACK, so a crash or a receiver
// outage loses nothing (§3.2, §3.5). The journal's outbox may carry this
// lane later; until then BoltQueue keeps it in its own file.
type Queue interface {
	// Push stores ev durably (on disk before it returns) and returns its
	// key, which increases with every push.
	Push(ev Event) (uint64, error)
	// Pending returns the events not yet retired, oldest first, with Key set.
	Pending() ([]Event, error)
	// Retire removes the event with key; an unknown key is not an error.
	Retire(key uint64) error
	// Len is the number of pending events.
	Len() int
}

// SeqStore is an optional ability of a Queue: it keeps the DC-09
// sequence across restarts, so a restarted transmitter does not send
// 0001 again to a receiver that may drop it as a repeat.
type SeqStore interface {
	// ReservedSeq returns the sequence reserved last (0 if none).
	ReservedSeq() (int, error)
	// ReserveSeq durably records that sequences up to n may be in use.
	ReserveSeq(n int) error
}

// ReportMarks is an optional ability of a Queue: it keeps the highest
// engine report seq the lane has taken (its event pushed, or none to
// send), so that a restart hands the lane again the reports the journal
// committed after it, which a crash between the two commits would lose.
type ReportMarks interface {
	// ReportMark returns the mark; ok is false for a lane that never
	// recorded one (a new file).
	ReportMark() (seq uint64, ok bool, err error)
	// MarkReports durably sets the mark to seq, lower or higher. Push
	// raises it to its event's Report in the same write.
	MarkReports(seq uint64) error
}

var (
	_ Queue       = (*BoltQueue)(nil)
	_ SeqStore    = (*BoltQueue)(nil)
	_ ReportMarks = (*BoltQueue)(nil)
)

var (
	bucketEvents = []byte("events")
	bucketMeta   = []byte("meta")
	keySeq       = []byte("seq")
	keyReport    = []byte("report")
)

// BoltQueue is a Queue in a bbolt file of its own (arc.db in the state
// directory).
type BoltQueue struct {
	db  *bolt.DB
	len atomic.Int64
}

// OpenBoltQueue opens or creates the queue file at path (mode 0600).
func OpenBoltQueue(path string) (*BoltQueue, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("arc: queue %s: %w", path, err)
	}
	q := &BoltQueue{db: db}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketMeta); err != nil {
			return err
		}
		b, err := tx.CreateBucketIfNotExists(bucketEvents)
		if err != nil {
			return err
		}
		q.len.Store(int64(b.Stats().KeyN))
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("arc: queue %s: %w", path, err)
	}
	return q, nil
}

// Push implements Queue.
func (q *BoltQueue) Push(ev Event) (uint64, error) {
	err := q.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		k, err := b.NextSequence()
		if err != nil {
			return err
		}
		ev.Key = k
		v, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		if err := b.Put(binary.BigEndian.AppendUint64(nil, k), v); err != nil {
			return err
		}
		if mb := tx.Bucket(bucketMeta); ev.Report > getUint(mb, keyReport) {
			return mb.Put(keyReport, binary.BigEndian.AppendUint64(nil, ev.Report))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("arc: queue push: %w", err)
	}
	q.len.Add(1)
	return ev.Key, nil
}

// Pending implements Queue.
func (q *BoltQueue) Pending() ([]Event, error) {
	var out []Event
	err := q.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEvents).ForEach(func(k, v []byte) error {
			var ev Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("event %x: %w", k, err)
			}
			ev.Key = binary.BigEndian.Uint64(k)
			out = append(out, ev)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("arc: queue: %w", err)
	}
	return out, nil
}

// Retire implements Queue.
func (q *BoltQueue) Retire(key uint64) error {
	removed := false
	err := q.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		k := binary.BigEndian.AppendUint64(nil, key)
		if b.Get(k) == nil {
			return nil
		}
		removed = true
		return b.Delete(k)
	})
	if err != nil {
		return fmt.Errorf("arc: queue retire: %w", err)
	}
	if removed {
		q.len.Add(-1)
	}
	return nil
}

// Len implements Queue.
func (q *BoltQueue) Len() int { return int(q.len.Load()) }

// ReservedSeq implements SeqStore.
func (q *BoltQueue) ReservedSeq() (int, error) {
	n := 0
	err := q.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySeq); len(v) == 8 {
			n = int(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	return n, err
}

// ReserveSeq implements SeqStore.
func (q *BoltQueue) ReserveSeq(n int) error {
	err := q.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySeq, binary.BigEndian.AppendUint64(nil, uint64(n)))
	})
	if err != nil {
		return fmt.Errorf("arc: queue: sequence: %w", err)
	}
	return nil
}

// ReportMark implements ReportMarks.
func (q *BoltQueue) ReportMark() (seq uint64, ok bool, err error) {
	err = q.db.View(func(tx *bolt.Tx) error {
		ok = tx.Bucket(bucketMeta).Get(keyReport) != nil
		seq = getUint(tx.Bucket(bucketMeta), keyReport)
		return nil
	})
	return seq, ok, err
}

// MarkReports implements ReportMarks.
func (q *BoltQueue) MarkReports(seq uint64) error {
	err := q.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyReport, binary.BigEndian.AppendUint64(nil, seq))
	})
	if err != nil {
		return fmt.Errorf("arc: queue: report mark: %w", err)
	}
	return nil
}

// getUint reads a big-endian uint64 meta value (0 when absent).
func getUint(b *bolt.Bucket, k []byte) uint64 {
	if v := b.Get(k); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// Close closes the file.
func (q *BoltQueue) Close() error { return q.db.Close() }
