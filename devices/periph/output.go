package periph

import (
	"errors"
	"fmt"
	"sync"

	"periph.io/x/conn/v3/gpio"

	"github.com/hallguard/hallguard/devices"
)

// errClosed is returned by Set after Close.
var errClosed = errors.New("line closed")

// output implements devices.Output over a periph pin, applying active-low in
// software.
type output struct {
	id        string
	pin       gpio.PinIO
	activeLow bool
	failSafe  devices.Level
	onClose   func()
	// afterFailSafe, if set, runs in Close between driving the fail-safe
	// level and releasing the pin (a test seam).
	afterFailSafe func()

	mu     sync.Mutex
	closed bool
}

var _ devices.Output = (*output)(nil)

// ID returns the output's configured id.
func (o *output) ID() string { return o.id }

// Set drives the pin to the logical level l.
func (o *output) Set(l devices.Level) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return fmt.Errorf("periph: set %s: %w", o.id, errClosed)
	}
	if err := o.pin.Out(physical(l, o.activeLow)); err != nil {
		return fmt.Errorf("periph: set %s: %w", o.id, err)
	}
	return nil
}

// Close drives the fail-safe level, then releases the pin, even if driving
// failed. Later calls return nil.
func (o *output) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	o.closed = true
	var errs []error
	if err := o.pin.Out(physical(o.failSafe, o.activeLow)); err != nil {
		errs = append(errs, fmt.Errorf("periph: fail-safe %s: %w", o.id, err))
	}
	if o.afterFailSafe != nil {
		o.afterFailSafe()
	}
	if err := release(o.pin); err != nil {
		errs = append(errs, fmt.Errorf("periph: close %s: %w", o.id, err))
	}
	if o.onClose != nil {
		o.onClose()
	}
	return errors.Join(errs...)
}
