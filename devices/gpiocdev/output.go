package gpiocdev

import (
	"errors"
	"fmt"
	"sync"

	"github.com/hallguard/hallguard/devices"
)

// setter is a requested output line.
type setter interface {
	// SetValue drives the logical level, 0 or 1.
	SetValue(v int) error
	// Close releases the line.
	Close() error
}

// output implements devices.Output.
type output struct {
	id       string
	req      setter
	failSafe devices.Level
	onClose  func()
	// afterFailSafe, if set, runs in Close between driving the fail-safe
	// level and releasing the line (a test seam: gpio-sim restores its pull
	// when a line is released, hiding what was driven).
	afterFailSafe func()

	mu     sync.Mutex
	closed bool
}

var _ devices.Output = (*output)(nil)

// errClosed is returned by Set after Close.
var errClosed = errors.New("line closed")

// ID returns the output's configured id.
func (o *output) ID() string { return o.id }

// Set drives the line to the logical level l.
func (o *output) Set(l devices.Level) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return fmt.Errorf("gpiocdev: set %s: %w", o.id, errClosed)
	}
	if err := o.req.SetValue(levelValue(l)); err != nil {
		return wrapErr("set", o.id, err)
	}
	return nil
}

// Close drives the fail-safe level, then releases the line, even if driving
// failed. Later calls do nothing and return nil.
func (o *output) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	o.closed = true
	var errs []error
	if err := o.req.SetValue(levelValue(o.failSafe)); err != nil {
		errs = append(errs, wrapErr("fail-safe", o.id, err))
	}
	if o.afterFailSafe != nil {
		o.afterFailSafe()
	}
	if err := o.req.Close(); err != nil {
		errs = append(errs, fmt.Errorf("gpiocdev: close %s: %w", o.id, err))
	}
	if o.onClose != nil {
		o.onClose()
	}
	return errors.Join(errs...)
}

func levelValue(l devices.Level) int {
	if l {
		return 1
	}
	return 0
}
