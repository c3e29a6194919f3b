package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
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
		// The anchor of the records Compact pruned: CheckAnchors counts
		// anchors at or below it as pruned (an unreadable one is Verify's
		// to report).
		if v := getMeta(tx.Bucket(bMeta), kAnchor); v != nil {
			if a, err := decodeLink(v); err == nil {
				s.anchorSeq, s.lastSeq = a.Seq, a.Seq
			}
		}
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

// snapshotTries bounds OpenSnapshot's attempts at a copy no commit ran
// through.
const snapshotTries = 20

// OpenSnapshot opens a private copy of the journal file at path read-only,
// for `hallguard journal verify` beside a running daemon: the daemon holds
// the file's lock, and asking the daemon instead would let it vouch for its
// own archive. Close removes the copy.
//
// The copy is taken without the lock (bbolt's flock is advisory) and is kept
// only if no commit ran through it: bbolt finishes every commit by writing
// one of its two meta pages (the first two pages of the file), and never
// writes over pages the last meta still refers to, so when the meta pages
// read before and after the copy are equal, the copy is the database as of
// that meta. Otherwise it tries again, up to 20 times.
func OpenSnapshot(path string) (*Store, error) {
	for try := 0; try < snapshotTries; try++ {
		tmp, stable, err := copyFile(path)
		if err != nil {
			return nil, err
		}
		if !stable {
			_ = os.Remove(tmp)
			time.Sleep(time.Duration(try+1) * 10 * time.Millisecond)
			continue
		}
		s, err := OpenReadOnly(tmp, time.Second)
		if err != nil {
			_ = os.Remove(tmp)
			return nil, fmt.Errorf("journal: snapshot of %s: %w", path, err)
		}
		s.cleanup = func() error { return os.Remove(tmp) }
		return s, nil
	}
	return nil, fmt.Errorf("journal: snapshot of %s: a commit ran through each of %d copies", path, snapshotTries)
}

// copyFile copies path to a new private temporary file and reports whether
// the meta pages were the same before and after.
func copyFile(path string) (tmp string, stable bool, err error) {
	src, err := os.Open(path)
	if err != nil {
		return "", false, fmt.Errorf("journal: snapshot: %w", err)
	}
	defer src.Close()
	before, err := metaPages(src)
	if err != nil {
		return "", false, fmt.Errorf("journal: snapshot of %s: %w", path, err)
	}
	dst, err := os.CreateTemp("", "hallguard-journal-*.db") // mode 0600
	if err != nil {
		return "", false, fmt.Errorf("journal: snapshot: %w", err)
	}
	_, cerr := io.Copy(dst, io.NewSectionReader(src, 0, 1<<62))
	if err := errors.Join(cerr, dst.Close()); err != nil {
		_ = os.Remove(dst.Name())
		return "", false, fmt.Errorf("journal: snapshot of %s: %w", path, err)
	}
	after, err := metaPages(src)
	if err != nil {
		_ = os.Remove(dst.Name())
		return "", false, fmt.Errorf("journal: snapshot of %s: %w", path, err)
	}
	return dst.Name(), bytes.Equal(before, after), nil
}

// metaPages returns the file's first two pages: bbolt's two meta pages. The
// page size is read from the first meta (bbolt's page header is 16 bytes,
// then the meta's magic 0xED0CDAED, version and page size, in the host's
// byte order, little-endian on every box hallguard runs on).
func metaPages(f *os.File) ([]byte, error) {
	var hdr [28]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return nil, fmt.Errorf("meta page: %w (%w)", err, ErrCorrupt)
	}
	if binary.LittleEndian.Uint32(hdr[16:20]) != 0xED0CDAED {
		return nil, fmt.Errorf("not a bbolt file: %w", ErrCorrupt)
	}
	ps := int(binary.LittleEndian.Uint32(hdr[24:28]))
	if ps < 512 || ps > 1<<20 {
		return nil, fmt.Errorf("page size %d: %w", ps, ErrCorrupt)
	}
	b := make([]byte, 2*ps)
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("meta pages: %w (%w)", err, ErrCorrupt)
	}
	return b, nil
}
