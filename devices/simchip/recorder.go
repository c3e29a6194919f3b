package simchip

import (
	"sync"

	"github.com/hallguard/hallguard/devices"
)

// Recorder is a devices.Handler that keeps what a Conditioner reports. It is
// safe for concurrent use by the conditioner's watch goroutine and timers.
type Recorder struct {
	mu      sync.Mutex
	signals []devices.Signal
	faults  []devices.Fault
}

var _ devices.Handler = (*Recorder)(nil)

// Signal records s.
func (r *Recorder) Signal(s devices.Signal) {
	r.mu.Lock()
	r.signals = append(r.signals, s)
	r.mu.Unlock()
}

// Fault records f.
func (r *Recorder) Fault(f devices.Fault) {
	r.mu.Lock()
	r.faults = append(r.faults, f)
	r.mu.Unlock()
}

// Has reports whether a fault of kind with Active == active was recorded.
func (r *Recorder) Has(kind devices.FaultKind, active bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.faults {
		if f.Kind == kind && f.Active == active {
			return true
		}
	}
	return false
}

// Signals returns a copy of the signals recorded so far.
func (r *Recorder) Signals() []devices.Signal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]devices.Signal(nil), r.signals...)
}

// Faults returns a copy of the faults recorded so far.
func (r *Recorder) Faults() []devices.Fault {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]devices.Fault(nil), r.faults...)
}

// Take returns what was recorded since the last Take and forgets it.
func (r *Recorder) Take() ([]devices.Signal, []devices.Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, f := r.signals, r.faults
	r.signals, r.faults = nil, nil
	return s, f
}
