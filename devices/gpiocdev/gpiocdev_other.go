//go:build !linux

package gpiocdev

import (
	"fmt"

	"github.com/hallguard/hallguard/devices"
)

// New returns an error wrapping devices.ErrNotSupported: the GPIO character
// device exists only on Linux.
func New(opts Options) (devices.Backend, error) {
	return nil, fmt.Errorf("gpiocdev: %w", devices.ErrNotSupported)
}
