// Package simchip gives tests running inside the vmtest VM (see
// devices/gpiocdev/vmtest/README.md) access to the gpio-sim chip that the
// VM's init created for them: its name, its lines, and the sysfs knobs that
// drive inputs and read outputs.
//
// Everything comes from the HALLGUARD_SIM_* environment variables exported by
// the init; outside the VM FromEnv reports ok == false and tests should skip.
//
// It also holds what every backend's tests share: watching an input and
// waiting for its events (watch.go), a Handler that records what
// conditioning reports (recorder.go), and the kernel checks whose steps are
// the same for gpiocdev and periph (checks.go). It is for tests only: no
// production package imports it, and it imports nothing of this module but
// devices and the clock.
package simchip

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Chip describes the simulated chip of the current test binary.
type Chip struct {
	Name      string   // HALLGUARD_SIM_CHIP, e.g. "gpiochip0"
	Dev       string   // HALLGUARD_SIM_DEV, e.g. "/dev/gpiochip0"
	Sysfs     string   // HALLGUARD_SIM_SYSFS, platform device dir /sys/devices/platform/gpio-sim.N
	BankSysfs string   // HALLGUARD_SIM_BANK_SYSFS, Sysfs/gpiochipM: holds sim_gpioK/{pull,value}
	Configfs  string   // HALLGUARD_SIM_CONFIGFS, /sys/kernel/config/gpio-sim/<name>
	Label     string   // HALLGUARD_SIM_LABEL
	Lines     []string // HALLGUARD_SIM_LINE_NAMES, index = line offset
}

// FromEnv reads the chip description; ok is false when not inside the VM.
func FromEnv() (c Chip, ok bool) {
	c = Chip{
		Name:      os.Getenv("HALLGUARD_SIM_CHIP"),
		Dev:       os.Getenv("HALLGUARD_SIM_DEV"),
		Sysfs:     os.Getenv("HALLGUARD_SIM_SYSFS"),
		BankSysfs: os.Getenv("HALLGUARD_SIM_BANK_SYSFS"),
		Configfs:  os.Getenv("HALLGUARD_SIM_CONFIGFS"),
		Label:     os.Getenv("HALLGUARD_SIM_LABEL"),
		Lines:     strings.Fields(os.Getenv("HALLGUARD_SIM_LINE_NAMES")),
	}
	if c.Name == "" || c.Sysfs == "" {
		return c, false
	}
	if c.BankSysfs == "" {
		c.BankSysfs = filepath.Join(c.Sysfs, c.Name)
	}
	return c, true
}

// Offset returns the offset of the named line, or -1.
func (c Chip) Offset(name string) int {
	for i, n := range c.Lines {
		if n == name {
			return i
		}
	}
	return -1
}

func (c Chip) attr(offset int, attr string) string {
	return filepath.Join(c.BankSysfs, "sim_gpio"+strconv.Itoa(offset), attr)
}

// SetPull drives an input line: up=true writes "pull-up" (line reads 1),
// up=false writes "pull-down" (line reads 0). An edge results if the level
// changes and the line is requested with edge detection.
func (c Chip) SetPull(offset int, up bool) error {
	v := "pull-down"
	if up {
		v = "pull-up"
	}
	return os.WriteFile(c.attr(offset, "pull"), []byte(v), 0)
}

// Pull returns "pull-up" or "pull-down" for the line.
func (c Chip) Pull(offset int) (string, error) {
	b, err := os.ReadFile(c.attr(offset, "pull"))
	return strings.TrimSpace(string(b)), err
}

// Value returns the simulated level of the line: for an output, what the
// consumer drives; for an input, what the pull gives.
func (c Chip) Value(offset int) (int, error) {
	b, err := os.ReadFile(c.attr(offset, "value"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// Remove unplugs the chip at run time (live=0) and deletes its configfs
// tree, exactly as the init does between test binaries. Open line requests
// on it start failing with ENODEV. The init creates a fresh chip for the
// next test binary, so a test that calls Remove should be the last test in
// its binary (or the binary's remaining tests must not need the chip).
func (c Chip) Remove() error {
	if c.Configfs == "" {
		return fmt.Errorf("simchip: HALLGUARD_SIM_CONFIGFS not set")
	}
	if err := c.Unplug(); err != nil {
		return err
	}
	banks, _ := filepath.Glob(filepath.Join(c.Configfs, "bank*"))
	for _, b := range banks {
		lines, _ := filepath.Glob(filepath.Join(b, "line*"))
		for _, l := range lines {
			if _, err := os.Stat(filepath.Join(l, "hog")); err == nil {
				if err := os.Remove(filepath.Join(l, "hog")); err != nil {
					return err
				}
			}
			if err := os.Remove(l); err != nil {
				return err
			}
		}
		if err := os.Remove(b); err != nil {
			return err
		}
	}
	return os.Remove(c.Configfs)
}

// Unplug sets live=0 (the gpiochip device goes away) but keeps the configfs
// tree, so Replug can bring the same chip back (possibly under another
// gpiochipN name: read the bank's chip_name again).
func (c Chip) Unplug() error {
	return os.WriteFile(filepath.Join(c.Configfs, "live"), []byte("0"), 0)
}

// Replug sets live=1 again after Unplug and returns the new gpiochip name.
func (c Chip) Replug() (string, error) {
	if err := os.WriteFile(filepath.Join(c.Configfs, "live"), []byte("1"), 0); err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(c.Configfs, "bank0", "chip_name"))
	return strings.TrimSpace(string(b)), err
}

// InVM returns the VM's chip, and skips t when the test runs outside the
// VM (HALLGUARD_SIM_CHIP unset).
func InVM(t testing.TB) Chip {
	t.Helper()
	c, ok := FromEnv()
	if !ok {
		t.Skip("not inside the vmtest VM (HALLGUARD_SIM_CHIP unset)")
	}
	return c
}

// Name returns the VM's chip name (HALLGUARD_SIM_CHIP), and fails t when the
// test runs outside the VM: the vmtest build tag means running in it.
func Name(t testing.TB) string {
	t.Helper()
	c, ok := FromEnv()
	if !ok {
		t.Fatal("HALLGUARD_SIM_CHIP is not set (e.g. gpiochip1); the vmtest tag means running in the VM")
	}
	return c.Name
}

// Line drives and reads one gpio-sim line through sysfs for a test, failing
// it on any error.
type Line struct {
	t      testing.TB
	chip   Chip
	offset int
}

// At returns line offset of chip, which must be the VM's chip (Name).
func At(t testing.TB, chip string, offset int) Line {
	t.Helper()
	c, ok := FromEnv()
	if !ok || c.Name != chip {
		t.Fatalf("gpio-sim chip %s not described by the VM's environment", chip)
	}
	return Line{t: t, chip: c, offset: offset}
}

// Pull sets the line's simulated input: pull-up (reads 1) or pull-down.
func (l Line) Pull(up bool) {
	l.t.Helper()
	if err := l.chip.SetPull(l.offset, up); err != nil {
		l.t.Fatalf("set line %d pull: %v", l.offset, err)
	}
}

// Value reads the line's simulated level (Chip.Value).
func (l Line) Value() int {
	l.t.Helper()
	v, err := l.chip.Value(l.offset)
	if err != nil {
		l.t.Fatalf("read line %d value: %v", l.offset, err)
	}
	return v
}
