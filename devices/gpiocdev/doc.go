// Package gpiocdev is the devices.Backend for the Linux GPIO character device
// (/dev/gpiochipN), built on github.com/warthog618/go-gpiocdev.
//
// It requests lines, turns the kernel's edge events into devices.Events and
// drives outputs. It must not condition: it does no software debounce and
// knows nothing of NO/NC contacts (devices.Conditioner does both, above it).
// The only debounce here is the kernel's, asked for when InputSpec.Debounce
// is set, and then reported by Input.KernelDebounce.
//
// # Events
//
// go-gpiocdev calls an event handler from its own goroutine. The handler only
// hands the event to a buffered queue and never blocks: when the queue is
// full it drops the oldest queued event, so the newest one, which carries the
// line's current level, always survives. Watch drains the queue in order from
// the caller's goroutine.
//
// Event.Seq is the kernel's per-line sequence number (LineSeqno, uAPI v2). A
// gap in it, whether the kernel's event buffer overflowed or the queue
// dropped events, is reported as Event.Lost on the next event and added to
// the input's running total, which LostCounter exposes. On uAPI v1 kernels
// there are no sequence numbers: Seq is a local counter and only queue drops
// are counted.
//
// # Timestamps
//
// Lines are requested with the kernel's default CLOCK_MONOTONIC event clock
// (every uAPI v2 kernel, and v1 since Linux 5.7). Each timestamp is turned
// into wall time when Watch delivers it, from a reading of CLOCK_MONOTONIC and
// of the wall clock taken together: time = wallNow - (monoNow - ts). Unlike an
// offset fixed at open, or CLOCK_REALTIME stamps (Linux 5.11+), this stays
// right when the wall clock is stepped after boot (NTP on a box without an
// RTC). A stamp far ahead of CLOCK_MONOTONIC is taken to be CLOCK_REALTIME
// (kernels before 5.7) and used as is.
//
// # Line loss
//
// When a chip goes away (USB expander unplugged, gpio-sim bank removed) the
// kernel fails every operation on its fds with ENODEV and, on recent kernels,
// reports the request fd as EPOLLHUP|EPOLLERR. go-gpiocdev's watcher ignores
// read errors and never calls the handler, so nothing reaches us that way (and
// its goroutine spins on the fd until the request is closed). Watch therefore
// probes the line every Options.ProbeInterval (1 s by default): LineInfo on a
// chip fd held open for the life of the input (on every kernel an ioctl on a
// chip fd fails once its chip is gone) and Value on the request fd. A failed
// probe delivers any events still queued, closes the request (stopping that
// goroutine) and makes Watch return an error wrapping devices.ErrLineLost.
//
// The probe's Value also guards against lost interrupts: if two probes in a
// row read a level other than the last one delivered while no event is
// queued, Watch delivers that level as an event with Lost = 1 and the
// previous Seq.
//
// # Library notes (go-gpiocdev v0.9.1)
//
// WithEventBufferSize is passed on every input request but v0.9.1 never copies
// it into the kernel request, so the kernel keeps its default buffer of 16
// events per line; the queue above it does get the asked size. Kernel
// debounce (uAPI v2, Linux 5.10+) is trailing-edge: an edge is reported only
// once the line has been stable for the period, so it adds that much latency,
// and the event's timestamp is taken when the period ends. Options.
// SoftwareDebounce leaves debouncing to the conditioner instead.
package gpiocdev
