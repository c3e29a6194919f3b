package periph

import (
	"fmt"

	"periph.io/x/conn/v3/gpio"

	"github.com/hallguard/hallguard/devices"
)

// output drives a periph pin for a devices.LineOutput, applying active-low
// in software.
type output struct {
	id        string
	pin       gpio.PinIO
	activeLow bool
	// afterFailSafe, if set, runs in Release before the pin is released,
	// so between driving the fail-safe level and releasing (a test seam).
	afterFailSafe func()
}

var _ devices.Driver = (*output)(nil)

// Drive drives the pin to the logical level l.
func (o *output) Drive(op string, l devices.Level) error {
	if err := o.pin.Out(physical(l, o.activeLow)); err != nil {
		return fmt.Errorf("periph: %s %s: %w", op, o.id, err)
	}
	return nil
}

// Release hands the pin back.
func (o *output) Release() error {
	if o.afterFailSafe != nil {
		o.afterFailSafe()
	}
	if err := release(o.pin); err != nil {
		return fmt.Errorf("periph: close %s: %w", o.id, err)
	}
	return nil
}
