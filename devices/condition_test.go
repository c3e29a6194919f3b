package devices_test

import (
	"sync"
	"testing"
	"time"

	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/clock"
)

// record keeps what a Conditioner reports.
type record struct {
	mu      sync.Mutex
	signals []devices.Signal
	faults  []devices.Fault
}

func (r *record) Signal(s devices.Signal) {
	r.mu.Lock()
	r.signals = append(r.signals, s)
	r.mu.Unlock()
}
func (r *record) Fault(f devices.Fault) { r.mu.Lock(); r.faults = append(r.faults, f); r.mu.Unlock() }

func (r *record) take() ([]devices.Signal, []devices.Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, f := r.signals, r.faults
	r.signals, r.faults = nil, nil
	return s, f
}

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

// A line lost while active and reopened idle reports idle, and the stuck
// fault it had clears; reopened active it is active again, and its stuck
// timer runs again.
func TestConditionerReopenReportsTrueLevelBothWays(t *testing.T) {
	clk := clock.NewFake(t0)
	rec := &record{}
	c := devices.NewConditioner(devices.ConditionSpec{ID: "door", StuckAfter: time.Minute}, clk, rec)
	c.Start(devices.Low, clk.Now())
	c.Edge(devices.Event{Line: "door", Level: devices.High, Time: clk.Now(), Seq: 1})
	clk.Advance(time.Minute)
	sig, faults := rec.take()
	if len(sig) != 1 || !sig[0].Active || len(faults) != 1 || faults[0].Kind != devices.FaultStuck || !faults[0].Active {
		t.Fatalf("before the loss: signals %+v, faults %+v; want active and stuck", sig, faults)
	}

	c.Stop() // the line is lost
	clk.Advance(time.Second)
	c.Start(devices.Low, clk.Now()) // reopened idle
	sig, faults = rec.take()
	if len(sig) != 1 || sig[0].Active {
		t.Errorf("reopened idle: signals %+v, want one inactive", sig)
	}
	if len(faults) != 1 || faults[0].Kind != devices.FaultStuck || faults[0].Active {
		t.Errorf("reopened idle: faults %+v, want stuck cleared", faults)
	}

	c.Stop()
	c.Start(devices.High, clk.Now()) // reopened active
	sig, _ = rec.take()
	if len(sig) != 1 || !sig[0].Active {
		t.Errorf("reopened active: signals %+v, want one active", sig)
	}
	clk.Advance(time.Minute)
	if _, faults = rec.take(); len(faults) != 1 || faults[0].Kind != devices.FaultStuck || !faults[0].Active {
		t.Errorf("reopened active for stuck_after: faults %+v, want stuck", faults)
	}
}

// A non-alarm input that was active and is still active at the reopen is
// not reported again (a smoke detector's verification is not restarted);
// an alarm input is: a reopened hold-up line counts as an alarm (§4.3).
func TestConditionerReopenActiveAlarmCountsAgain(t *testing.T) {
	for _, alarm := range []bool{false, true} {
		clk := clock.NewFake(t0)
		rec := &record{}
		c := devices.NewConditioner(devices.ConditionSpec{ID: "in", Alarm: alarm}, clk, rec)
		c.Start(devices.High, clk.Now())
		c.Stop()
		rec.take()
		c.Start(devices.High, clk.Now())
		sig, _ := rec.take()
		if want := map[bool]int{false: 0, true: 1}[alarm]; len(sig) != want || (want == 1 && !sig[0].Active) {
			t.Errorf("alarm %v: reopened still active: signals %+v, want %d active", alarm, sig, want)
		}
	}
}
