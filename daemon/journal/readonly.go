package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hallguard/hallguard/devices/clock"
)

// ErrReadOnly is returned by writes to a store opened with OpenReadOnly.
var ErrReadOnly = errors.New("journal: opened read-only")

// OpenReadOnly opens the journal file at path for reading only, for the
// `hallguard journal` commands: Verify, List, Get and the exports work; no
// write is ever made, and a damaged file is reported, not moved aside or
// repaired. While a daemon holds the file it fails with ErrLocked after
// timeout.
func OpenReadOnly(path string, timeout time.Duration) (*Store, error) {
	if timeout <= 0 {
		timeout = time.Second
	}
	var db *bolt.DB
	err := guard(func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout})
		return err
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("journal: %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("journal: open %s read-only: %w: %w", path, ErrCorrupt, err)
	}
	s := &Store{path: path, readOnly: true, log: slog.Default(), clk: clock.Real{}, db: db,
		quit: make(chan struct{}), done: make(chan struct{})}
	close(s.done) // no committer
	err = s.view(func(tx *bolt.Tx) error {
		if jb := tx.Bucket(bJournal); jb != nil {
			if k, _ := jb.Cursor().Last(); len(k) == 8 {
				s.lastSeq = binary.BigEndian.Uint64(k)
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("journal: %s: %w", path, err)
	}
	s.outbox = &Outbox{s: s}
	return s, nil
}
