package devices

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrClosed is returned by a LineOutput's Set after Close.
var ErrClosed = errors.New("line closed")

// Driver is one requested output line, as a backend drives it for a
// LineOutput. Both methods return errors already wrapped by the backend.
type Driver interface {
	// Drive sets the line to the logical level l; op ("set" or
	// "fail-safe") names the step in the error.
	Drive(op string, l Level) error
	// Release frees the line.
	Release() error
}

// LineOutput is the Output of the hardware backends over a Driver. Set and
// Close are serialized; Close drives the fail-safe level, then releases the
// line even if driving failed, then calls the backend's onClose. Later
// calls to Close do nothing and return nil; Set after Close returns an
// error wrapping ErrClosed.
type LineOutput struct {
	backend  string // "gpiocdev", "periph": the errors' prefix
	id       string
	line     Driver
	failSafe Level
	onClose  func()

	mu     sync.Mutex
	closed bool
}

var _ Output = (*LineOutput)(nil)

// NewLineOutput returns the output id of backend over line, whose fail-safe
// level is failSafe. onClose, if not nil, runs at the end of the first
// Close.
func NewLineOutput(backend, id string, line Driver, failSafe Level, onClose func()) *LineOutput {
	return &LineOutput{backend: backend, id: id, line: line, failSafe: failSafe, onClose: onClose}
}

// ID returns the output's configured id.
func (o *LineOutput) ID() string { return o.id }

// Driver returns the line the output drives.
func (o *LineOutput) Driver() Driver { return o.line }

// Set drives the line to the logical level l.
func (o *LineOutput) Set(l Level) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return fmt.Errorf("%s: set %s: %w", o.backend, o.id, ErrClosed)
	}
	return o.line.Drive("set", l)
}

// Close drives the fail-safe level, then releases the line, even if driving
// failed. Later calls do nothing and return nil.
func (o *LineOutput) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	o.closed = true
	errs := []error{o.line.Drive("fail-safe", o.failSafe)}
	errs = append(errs, o.line.Release())
	if o.onClose != nil {
		o.onClose()
	}
	return errors.Join(errs...)
}

// CloseLines closes every line, outputs first so that they reach their
// fail-safe levels as early as possible, and joins the errors: a backend's
// Close.
func CloseLines[L io.Closer](lines []L) error {
	var outs, ins []io.Closer
	for _, l := range lines {
		if _, ok := any(l).(Output); ok {
			outs = append(outs, l)
		} else {
			ins = append(ins, l)
		}
	}
	var errs []error
	for _, c := range append(outs, ins...) {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
