package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	berrors "go.etcd.io/bbolt/errors"
)

// Errors callers branch on.
var (
	// ErrDegraded: the state directory cannot be written (disk full,
	// read-only, I/O error). Records given to Append with this error are
	// held in memory and written, in order, when the disk works again (lost
	// only if the process ends first); reports keep flowing through the
	// outbox from memory. See Store.Degraded.
	ErrDegraded = errors.New("journal: degraded: state not written to disk")
	// ErrLocked: another process (a second daemon) holds the database file.
	// It is not corruption; nothing was changed.
	ErrLocked = errors.New("journal: database locked by another process")
	// ErrCorrupt: a stored record or entry is not what the journal wrote.
	ErrCorrupt = errors.New("journal: corrupt")
	// ErrInvalid: Append was given a record it cannot store (no kind, data
	// not JSON, time out of range). Nothing was appended.
	ErrInvalid = errors.New("journal: invalid record")
	// ErrNotFound: Get of a seq that is not in the journal.
	ErrNotFound = errors.New("journal: record not found")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("journal: store closed")
	// ErrBacklogFull: while degraded, more than Options.MaxBacklog journal
	// records were waiting for the disk; these were dropped (never reports:
	// the outbox keeps every report). Wrapped together with ErrDegraded.
	ErrBacklogFull = errors.New("journal: backlog full, records dropped")
)

// corruptError is a corruption found by the journal itself.
type corruptError struct{ msg string }

func (e *corruptError) Error() string { return "journal: corrupt: " + e.msg }
func (e *corruptError) Unwrap() error { return ErrCorrupt }

func corruptf(format string, args ...any) error {
	return &corruptError{msg: fmt.Sprintf(format, args...)}
}

// errClass sorts an error from opening or reading the database.
type errClass int

const (
	classIO      errClass = iota // the disk or the file system: degrade and retry
	classLocked                  // another process holds the lock
	classCorrupt                 // the file is not a sound hallguard database: move it aside
)

// classify tells a damaged file (not a bbolt database, bad meta pages,
// truncated, a failing chain or entry) from a file system that refuses
// (permissions, read-only, disk full, I/O): only the former is moved aside.
func classify(err error) errClass {
	var pe *fs.PathError
	var errno syscall.Errno
	var ioe *ioError
	switch {
	case errors.Is(err, ErrLocked), errors.Is(err, berrors.ErrTimeout):
		return classLocked
	case errors.As(err, &ioe):
		return classIO
	case errors.Is(err, ErrCorrupt),
		errors.Is(err, berrors.ErrInvalid),
		errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch),
		errors.Is(err, berrors.ErrInvalidMapping):
		return classCorrupt
	case errors.As(err, &pe), errors.As(err, &errno):
		return classIO
	default:
		// bbolt's own unwrapped errors from Open ("file size too small")
		// and panics turned into errors while reading pages.
		return classCorrupt
	}
}
