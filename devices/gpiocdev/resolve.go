package gpiocdev

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hallguard/hallguard/devices"
)

// finder lists the system's chips and their lines.
type finder interface {
	// Chips returns the chip names, e.g. "gpiochip0".
	Chips() []string
	// Lines returns the names of the chip's lines, indexed by offset. It
	// returns errNoChip if the chip does not exist.
	Lines(chip string) ([]string, error)
}

// errNoChip is returned by finder.Lines for a chip that does not exist.
var errNoChip = errors.New("no such chip")

// resolve finds the chip and offset of ref. A line given by offset is taken
// on ref.Chip (or defChip); if ref.Name is also set the line must have that
// name. A line given by name is looked up on ref.Chip, or on every chip when
// ref.Chip is empty, and must be unique there. Errors for missing chips and
// lines wrap devices.ErrNoSuchLine and name the line.
func resolve(ref devices.LineRef, defChip string, f finder) (chip string, offset int, err error) {
	if ref.Offset >= 0 {
		chip = chipOr(ref.Chip, defChip)
		names, err := f.Lines(chip)
		if err != nil {
			return "", 0, chipErr(chip, err)
		}
		if ref.Offset >= len(names) {
			return "", 0, fmt.Errorf("line %d on %s (%d lines): %w", ref.Offset, chip, len(names), devices.ErrNoSuchLine)
		}
		if ref.Name != "" && names[ref.Offset] != ref.Name {
			return "", 0, fmt.Errorf("line %d on %s is named %q, not %q: %w", ref.Offset, chip, names[ref.Offset], ref.Name, devices.ErrNoSuchLine)
		}
		return chip, ref.Offset, nil
	}
	if ref.Name == "" {
		return "", 0, fmt.Errorf("line has neither offset nor name: %w", devices.ErrNoSuchLine)
	}
	chips := []string{ref.Chip}
	if ref.Chip == "" {
		chips = f.Chips()
	}
	var found []string // "chip:offset" of every match
	for _, c := range chips {
		names, err := f.Lines(c)
		if err != nil {
			if ref.Chip != "" {
				return "", 0, chipErr(c, err)
			}
			continue // a chip we cannot open holds no line we can use
		}
		for o, n := range names {
			if n == ref.Name {
				found = append(found, fmt.Sprintf("%s:%d", c, o))
				chip, offset = c, o
			}
		}
	}
	switch len(found) {
	case 0:
		where := ref.Chip
		if where == "" {
			where = "any chip"
		}
		return "", 0, fmt.Errorf("line %q on %s: %w", ref.Name, where, devices.ErrNoSuchLine)
	case 1:
		return chip, offset, nil
	default:
		return "", 0, fmt.Errorf("line name %q is ambiguous (%s): give the chip or offset", ref.Name, strings.Join(found, ", "))
	}
}

func chipOr(chip, def string) string {
	if chip == "" {
		return def
	}
	return chip
}

func chipErr(chip string, err error) error {
	if errors.Is(err, errNoChip) {
		return fmt.Errorf("chip %s: %w", chip, devices.ErrNoSuchLine)
	}
	return fmt.Errorf("chip %s: %w", chip, err)
}
