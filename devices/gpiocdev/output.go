package gpiocdev

import (
	"fmt"

	"github.com/hallguard/hallguard/devices"
)

// setter is a requested output line.
type setter interface {
	// SetValue drives the logical level, 0 or 1.
	SetValue(v int) error
	// Close releases the line.
	Close() error
}

// output drives a requested line for a devices.LineOutput.
type output struct {
	id  string
	req setter
	// afterFailSafe, if set, runs in Release before the line is released,
	// so between driving the fail-safe level and releasing (a test seam:
	// gpio-sim restores its pull when a line is released, hiding what was
	// driven).
	afterFailSafe func()
}

var _ devices.Driver = (*output)(nil)

// Drive drives the logical level l.
func (o *output) Drive(op string, l devices.Level) error {
	if err := o.req.SetValue(levelValue(l)); err != nil {
		return wrapErr(op, o.id, err)
	}
	return nil
}

// Release releases the line.
func (o *output) Release() error {
	if o.afterFailSafe != nil {
		o.afterFailSafe()
	}
	if err := o.req.Close(); err != nil {
		return fmt.Errorf("gpiocdev: close %s: %w", o.id, err)
	}
	return nil
}

func levelValue(l devices.Level) int {
	if l {
		return 1
	}
	return 0
}
