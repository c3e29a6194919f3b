// Package periph is the devices.Backend for periph.io: host.Init and the
// pins that its drivers (gpioioctl for /dev/gpiochipN, sysfs, SoC drivers)
// register in gpioreg.
//
// It opens pins, turns WaitForEdge wake-ups into devices.Events and drives
// outputs. It must not condition: it does no debouncing (KernelDebounce is
// always false, so conditioning debounces) and knows nothing of NO/NC.
//
// # Lines
//
// A line given by name is looked up with gpioreg.ByName. gpioioctl registers
// each named kernel line under its name, and a name already taken as
// "<chip>-<name>"; unnamed lines are not registered. A line given by offset
// (or by name with a chip) is looked up on that chip among those gpioioctl
// found, so offsets work on /dev/gpiochipN lines whatever their names.
// Opening the same pin twice is refused: periph hands out one shared object
// per pin.
//
// # Events
//
// periph has no active-low setting: it is applied here, in software. Watch
// loops on WaitForEdge with a bounded timeout (Options.WaitTimeout) and,
// after each wake-up, reads the level. periph's WaitForEdge reports neither
// the edge's direction nor its kernel timestamp nor a sequence number, so:
//
//   - Event.Level is the level read after the wake-up, not the edge's;
//   - Event.Time is Options.Clock's time when Watch woke up;
//   - Event.Seq is a counter of delivered events, from 1;
//   - an edge after which the level is unchanged (a pulse shorter than the
//     time to read it) is delivered with Lost = 1 at the unchanged level, so
//     conditioning raises FaultLostEdges at once, and counted in LostEdges;
//   - each timeout also reads the level and delivers it if it changed with
//     no edge seen (its late edge is then not counted as lost);
//   - the kernel's 16-event buffer can overflow unseen (no sequence numbers);
//     the last event still leads to a read of the current level.
//
// # Line loss
//
// periph reports no errors from WaitForEdge or Read. gpioioctl's WaitForEdge
// returns false at once when its read fails, as it does with ENODEV once the
// chip is gone: after three consecutive returns well before the timeout,
// Watch returns an error wrapping devices.ErrLineLost. Levels read after
// such early returns are not trusted (gpioioctl's Read returns Low on error).
// Where the kernel leaves a dead line's read blocked (older kernels), loss
// is not detected. gpiocdev has no such gaps; prefer it for safety inputs.
//
// # Outputs
//
// gpioioctl's Out first switches the line to output, which the kernel drives
// low, and only then sets the level: a fail-safe High output glitches low
// for the time of two ioctls when opened. gpioioctl's Read on an output pin
// reconfigures it as an input, so outputs are never read here.
package periph
