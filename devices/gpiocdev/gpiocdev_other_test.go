//go:build !linux

package gpiocdev

import (
	"errors"
	"testing"

	"github.com/hallguard/hallguard/devices"
)

func TestNewNotSupported(t *testing.T) {
	if _, err := New(Options{}); !errors.Is(err, devices.ErrNotSupported) {
		t.Errorf("New = %v, want ErrNotSupported", err)
	}
}
