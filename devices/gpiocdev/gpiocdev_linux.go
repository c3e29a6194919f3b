//go:build linux

package gpiocdev

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/warthog618/go-gpiocdev"
	"golang.org/x/sys/unix"

	"github.com/hallguard/hallguard/devices"
)

// backend implements devices.Backend over go-gpiocdev.
type backend struct {
	opts  Options
	lines registry
	find  finder
}

var _ devices.Backend = (*backend)(nil)

// New returns the gpiocdev backend. It opens nothing until a line is opened.
func New(opts Options) (devices.Backend, error) {
	o := opts.withDefaults()
	if o.Monotonic == nil {
		o.Monotonic = monotonicNow
	}
	return &backend{opts: o, find: sysFinder{}}, nil
}

// resolve finds ref's chip and offset; it fails once the backend is closed.
func (b *backend) resolve(ref devices.LineRef) (chip string, offset int, err error) {
	if b.lines.isClosed() {
		return "", 0, errBackendClosed
	}
	return resolve(ref, b.opts.DefaultChip, b.find)
}

// OpenInput requests the line as an input with both-edge events, the spec's
// bias and active-low setting, and kernel debounce when spec.Debounce > 0
// (unless Options.SoftwareDebounce). If the kernel cannot debounce (uAPI v1)
// the line is requested without it and KernelDebounce reports false.
func (b *backend) OpenInput(spec devices.InputSpec) (devices.Input, error) {
	chipName, offset, err := b.resolve(spec.Line)
	if err != nil {
		return nil, fmt.Errorf("gpiocdev: input %s: %w", spec.ID, err)
	}
	queue := spec.EventBuffer
	if queue <= 0 {
		queue = b.opts.EventBuffer
	}
	in := newInput(spec.ID, queue, b.opts.Clock, b.opts.Monotonic)
	handler := func(le gpiocdev.LineEvent) {
		in.push(rawEvent{ts: le.Timestamp, rising: le.Type == gpiocdev.LineEventRisingEdge, seqno: le.LineSeqno})
	}
	debounce := spec.Debounce > 0 && !b.opts.SoftwareDebounce
	opts, err := inputOptions(spec, b.opts.Consumer, queue, debounce, handler)
	if err != nil {
		return nil, fmt.Errorf("gpiocdev: input %s: %w", spec.ID, err)
	}
	// The chip stays open for the life of the input: the liveness probe
	// asks it for line info, which fails with ENODEV once the chip is gone.
	chip, err := gpiocdev.NewChip(chipName, gpiocdev.WithConsumer(b.opts.Consumer))
	if err != nil {
		return nil, fmt.Errorf("gpiocdev: input %s: %w", spec.ID, chipErr(chipName, openErr(err)))
	}
	l, err := chip.RequestLine(offset, opts...)
	if err != nil && debounce && debounceRefused(err) {
		debounce = false
		opts, _ = inputOptions(spec, b.opts.Consumer, queue, false, handler)
		l, err = chip.RequestLine(offset, opts...)
	}
	if err != nil {
		chip.Close()
		return nil, fmt.Errorf("gpiocdev: input %s: request %s line %d: %w", spec.ID, chipName, offset, requestErr(err))
	}
	in.kernelDebounce = debounce
	in.req = &lineRequest{line: l, chip: chip}
	v, err := l.Value()
	if err != nil {
		in.req.Close()
		return nil, wrapErr("read", spec.ID, err)
	}
	in.initial = v != 0
	if b.opts.ProbeInterval > 0 {
		in.probeEvery = b.opts.ProbeInterval
		in.probe = func() (int, error) {
			if _, err := chip.LineInfo(offset); err != nil {
				return 0, fmt.Errorf("line info: %w", err)
			}
			v, err := l.Value()
			if err != nil {
				return 0, fmt.Errorf("value: %w", err)
			}
			return v, nil
		}
	}
	in.onClose = func() { b.lines.remove(in) }
	if err := b.lines.add(in); err != nil {
		in.req.Close()
		return nil, fmt.Errorf("gpiocdev: input %s: %w", spec.ID, err)
	}
	return in, nil
}

// OpenOutput requests the line as an output driven at spec.FailSafe from the
// moment of the request (the kernel sets direction and value together).
func (b *backend) OpenOutput(spec devices.OutputSpec) (devices.Output, error) {
	chipName, offset, err := b.resolve(spec.Line)
	if err != nil {
		return nil, fmt.Errorf("gpiocdev: output %s: %w", spec.ID, err)
	}
	l, err := gpiocdev.RequestLine(chipName, offset, outputOptions(spec, b.opts.Consumer)...)
	if err != nil {
		return nil, fmt.Errorf("gpiocdev: output %s: request %s line %d: %w", spec.ID, chipName, offset, requestErr(openErr(err)))
	}
	var o *devices.LineOutput
	o = devices.NewLineOutput("gpiocdev", spec.ID, &output{id: spec.ID, req: l}, spec.FailSafe, func() { b.lines.remove(o) })
	if err := b.lines.add(o); err != nil {
		o.Close()
		return nil, fmt.Errorf("gpiocdev: output %s: %w", spec.ID, err)
	}
	return o, nil
}

// Close drives every open output to its fail-safe level, then releases every
// line. Lines cannot be opened afterwards.
func (b *backend) Close() error {
	return b.lines.closeAll()
}

// inputOptions maps an InputSpec to line request options.
func inputOptions(spec devices.InputSpec, consumer string, buffer int, debounce bool, h gpiocdev.EventHandler) ([]gpiocdev.LineReqOption, error) {
	bias, err := biasOption(spec.Bias)
	if err != nil {
		return nil, err
	}
	opts := []gpiocdev.LineReqOption{
		gpiocdev.WithConsumer(consumer),
		gpiocdev.AsInput,
		bias,
		gpiocdev.WithBothEdges,
		gpiocdev.WithMonotonicEventClock,
		gpiocdev.WithEventBufferSize(buffer),
		gpiocdev.WithEventHandler(h),
	}
	if spec.ActiveLow {
		opts = append(opts, gpiocdev.AsActiveLow)
	}
	if debounce {
		opts = append(opts, gpiocdev.WithDebounce(spec.Debounce))
	}
	return opts, nil
}

// outputOptions maps an OutputSpec to line request options.
func outputOptions(spec devices.OutputSpec, consumer string) []gpiocdev.LineReqOption {
	opts := []gpiocdev.LineReqOption{
		gpiocdev.WithConsumer(consumer),
		gpiocdev.AsOutput(levelValue(spec.FailSafe)),
	}
	if spec.ActiveLow {
		opts = append(opts, gpiocdev.AsActiveLow)
	}
	return opts
}

func biasOption(b devices.Bias) (gpiocdev.LineBias, error) {
	switch b {
	case devices.BiasAsIs:
		return gpiocdev.WithBiasAsIs, nil
	case devices.BiasDisabled:
		return gpiocdev.WithBiasDisabled, nil
	case devices.BiasPullUp:
		return gpiocdev.WithPullUp, nil
	case devices.BiasPullDown:
		return gpiocdev.WithPullDown, nil
	}
	return 0, fmt.Errorf("unknown bias %q", b)
}

// debounceRefused reports whether a request failed because the kernel or
// chip cannot debounce.
func debounceRefused(err error) bool {
	var incompat gpiocdev.ErrUapiIncompatibility
	return errors.As(err, &incompat) || errors.Is(err, unix.EINVAL) ||
		errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.Errno(524)) // kernel ENOTSUPP
}

// openErr maps a missing chip device to errNoChip.
func openErr(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, gpiocdev.ErrNotCharacterDevice) {
		return fmt.Errorf("%w: %w", errNoChip, err)
	}
	return err
}

// requestErr maps an out-of-range offset to devices.ErrNoSuchLine.
func requestErr(err error) error {
	if errors.Is(err, gpiocdev.ErrInvalidOffset) || errors.Is(err, errNoChip) {
		return fmt.Errorf("%w: %w", devices.ErrNoSuchLine, err)
	}
	return err
}

// lineRequest is an input's request and the chip it holds open for probing.
type lineRequest struct {
	line *gpiocdev.Line
	chip *gpiocdev.Chip
}

func (r *lineRequest) Value() (int, error) { return r.line.Value() }

// Close releases the line (waiting for go-gpiocdev's watcher to stop) and
// then the chip.
func (r *lineRequest) Close() error {
	return errors.Join(r.line.Close(), r.chip.Close())
}

// sysFinder finds chips under /dev.
type sysFinder struct{}

func (sysFinder) Chips() []string { return gpiocdev.Chips() }

func (sysFinder) Lines(chip string) ([]string, error) {
	c, err := gpiocdev.NewChip(chip)
	if err != nil {
		return nil, openErr(err)
	}
	defer c.Close()
	names := make([]string, c.Lines())
	for o := range names {
		inf, err := c.LineInfo(o)
		if err != nil {
			return nil, fmt.Errorf("line %d info: %w", o, err)
		}
		names[o] = inf.Name
	}
	return names, nil
}

// monotonicNow reads CLOCK_MONOTONIC, the clock of the kernel's event
// timestamps; it returns -1 if the clock cannot be read.
func monotonicNow() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return -1
	}
	return time.Duration(ts.Nano())
}
