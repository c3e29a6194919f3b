package devices_test

import (
	"testing"
	"time"

	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/devices/simchip"
)

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

// A line lost while active and reopened idle reports idle, and the stuck
// fault it had clears; reopened active it is active again, and its stuck
// timer runs again.
func TestConditionerReopenReportsTrueLevelBothWays(t *testing.T) {
	clk := clock.NewFake(t0)
	rec := &simchip.Recorder{}
	c := devices.NewConditioner(devices.ConditionSpec{ID: "door", StuckAfter: time.Minute}, clk, rec)
	c.Start(devices.Low, clk.Now())
	c.Edge(devices.Event{Line: "door", Level: devices.High, Time: clk.Now(), Seq: 1})
	clk.Advance(time.Minute)
	sig, faults := rec.Take()
	if len(sig) != 1 || !sig[0].Active || len(faults) != 1 || faults[0].Kind != devices.FaultStuck || !faults[0].Active {
		t.Fatalf("before the loss: signals %+v, faults %+v; want active and stuck", sig, faults)
	}

	c.Stop() // the line is lost
	clk.Advance(time.Second)
	c.Start(devices.Low, clk.Now()) // reopened idle
	sig, faults = rec.Take()
	if len(sig) != 1 || sig[0].Active {
		t.Errorf("reopened idle: signals %+v, want one inactive", sig)
	}
	if len(faults) != 1 || faults[0].Kind != devices.FaultStuck || faults[0].Active {
		t.Errorf("reopened idle: faults %+v, want stuck cleared", faults)
	}

	c.Stop()
	c.Start(devices.High, clk.Now()) // reopened active
	sig, _ = rec.Take()
	if len(sig) != 1 || !sig[0].Active {
		t.Errorf("reopened active: signals %+v, want one active", sig)
	}
	clk.Advance(time.Minute)
	if _, faults = rec.Take(); len(faults) != 1 || faults[0].Kind != devices.FaultStuck || !faults[0].Active {
		t.Errorf("reopened active for stuck_after: faults %+v, want stuck", faults)
	}
}

// A non-alarm input that was active and is still active at the reopen is
// not reported again (a smoke detector's verification is not restarted);
// an alarm input is: a reopened hold-up line counts as an alarm (§4.3).
func TestConditionerReopenActiveAlarmCountsAgain(t *testing.T) {
	for _, alarm := range []bool{false, true} {
		clk := clock.NewFake(t0)
		rec := &simchip.Recorder{}
		c := devices.NewConditioner(devices.ConditionSpec{ID: "in", Alarm: alarm}, clk, rec)
		c.Start(devices.High, clk.Now())
		c.Stop()
		rec.Take()
		c.Start(devices.High, clk.Now())
		sig, _ := rec.Take()
		if want := map[bool]int{false: 0, true: 1}[alarm]; len(sig) != want || (want == 1 && !sig[0].Active) {
			t.Errorf("alarm %v: reopened still active: signals %+v, want %d active", alarm, sig, want)
		}
	}
}

// A backend that knows it missed a whole pulse delivers the edge after the
// gap with Lost set. On an alarm input (panic, call point) the activation
// hidden in the gap is reported, flagged Inferred (§4.3: a doubtful signal
// counts as an alarm); lost_edges trouble is raised as well, never instead.
func TestMissedPulseOnAlarmInputIsAnActivation(t *testing.T) {
	cases := []struct {
		name    string
		contact devices.Contact
		before  devices.Level // raw level before the gap
		after   devices.Level // level of the edge after it
		lost    uint64
		want    []bool // Active of each signal after Start's
		infer   bool
	}{
		// gpiocdev: a seqno gap that ends at the idle level.
		{"NO idle, press lost, release seen", devices.NO, devices.Low, devices.Low, 1, []bool{true, false}, true},
		{"NC idle, opening lost, closing seen", devices.NC, devices.High, devices.High, 1, []bool{true, false}, true},
		// periph: the level came back before it could be read.
		{"NO held, release and re-press lost", devices.NO, devices.High, devices.High, 1, []bool{true}, true},
		{"NO held, release+press lost before the release", devices.NO, devices.High, devices.Low, 2, []bool{true, false}, true},
		// Not a hidden activation: the activation itself is seen.
		{"NO idle, press seen after lost pulses", devices.NO, devices.Low, devices.High, 2, []bool{true}, false},
		// A level correction (gpiocdev's probe): the release itself was lost.
		{"NO held, release found by a probe", devices.NO, devices.High, devices.Low, 1, []bool{false}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(t0)
			rec := &simchip.Recorder{}
			c := devices.NewConditioner(devices.ConditionSpec{ID: "panic", Contact: tc.contact, Alarm: true}, clk, rec)
			defer c.Stop()
			c.Start(tc.before, clk.Now())
			rec.Take()
			clk.Advance(time.Second)
			c.Edge(devices.Event{Line: "panic", Level: tc.after, Time: clk.Now(), Seq: 1 + tc.lost, Lost: tc.lost})
			sig, faults := rec.Take()
			var got []bool
			for _, s := range sig {
				got = append(got, s.Active)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("signals %+v, want Active %v", sig, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("signals %+v, want Active %v", sig, tc.want)
				}
			}
			if sig[0].Inferred != tc.infer || (tc.infer && sig[0].Lost != tc.lost) {
				t.Errorf("first signal %+v: Inferred %v (Lost %d), want %v", sig[0], sig[0].Inferred, sig[0].Lost, tc.infer)
			}
			for _, s := range sig[1:] {
				if s.Inferred {
					t.Errorf("signal %+v flagged Inferred: only the hidden activation is", s)
				}
			}
			if len(faults) != 1 || faults[0].Kind != devices.FaultLostEdges || !faults[0].Active || faults[0].Count != tc.lost {
				t.Errorf("faults %+v, want lost_edges count %d as well", faults, tc.lost)
			}
		})
	}
}

// On other inputs (smoke, counters, tamper, generic) a missed pulse stays
// trouble: lost_edges, and no signal.
func TestMissedPulseOnOtherInputStaysTrouble(t *testing.T) {
	clk := clock.NewFake(t0)
	rec := &simchip.Recorder{}
	c := devices.NewConditioner(devices.ConditionSpec{ID: "smoke"}, clk, rec)
	defer c.Stop()
	c.Start(devices.Low, clk.Now())
	c.Edge(devices.Event{Line: "smoke", Level: devices.Low, Time: clk.Now(), Seq: 2, Lost: 1})
	sig, faults := rec.Take()
	if len(sig) != 0 {
		t.Errorf("signals %+v, want none", sig)
	}
	if len(faults) != 1 || faults[0].Kind != devices.FaultLostEdges || !faults[0].Active {
		t.Errorf("faults %+v, want lost_edges", faults)
	}
}

// lost_edges clears once the line behaves: LostEdgesClear without a further
// loss. A new loss raises it again and restarts the wait.
func TestLostEdgesClearsOnceTheLineBehaves(t *testing.T) {
	clk := clock.NewFake(t0)
	rec := &simchip.Recorder{}
	c := devices.NewConditioner(devices.ConditionSpec{ID: "beam", LostEdgesClear: time.Minute}, clk, rec)
	defer c.Stop()
	c.Start(devices.Low, clk.Now())
	c.Edge(devices.Event{Line: "beam", Level: devices.High, Time: clk.Now(), Seq: 3, Lost: 2})
	clk.Advance(30 * time.Second)
	c.Edge(devices.Event{Line: "beam", Level: devices.Low, Time: clk.Now(), Seq: 5, Lost: 1})
	clk.Advance(59 * time.Second)
	_, faults := rec.Take()
	for _, f := range faults {
		if !f.Active {
			t.Fatalf("lost_edges cleared %v after the last loss, want %v: %+v", 59*time.Second, time.Minute, faults)
		}
	}
	if len(faults) != 2 {
		t.Fatalf("faults %+v, want two lost_edges raised", faults)
	}
	// Clean edges do not hold it up.
	c.Edge(devices.Event{Line: "beam", Level: devices.High, Time: clk.Now(), Seq: 6})
	clk.Advance(time.Second)
	_, faults = rec.Take()
	if len(faults) != 1 || faults[0].Kind != devices.FaultLostEdges || faults[0].Active {
		t.Fatalf("faults %+v, want lost_edges cleared a minute after the last loss", faults)
	}
	clk.Advance(time.Hour)
	if _, faults = rec.Take(); len(faults) != 0 {
		t.Errorf("faults %+v after the clear, want none", faults)
	}
}

// The default clear delay applies when the spec gives none, and a line
// reopened after a loss still clears its lost_edges.
func TestLostEdgesClearsAfterReopen(t *testing.T) {
	clk := clock.NewFake(t0)
	rec := &simchip.Recorder{}
	c := devices.NewConditioner(devices.ConditionSpec{ID: "beam"}, clk, rec)
	c.Start(devices.Low, clk.Now())
	c.Edge(devices.Event{Line: "beam", Level: devices.Low, Time: clk.Now(), Seq: 2, Lost: 1})
	c.Stop() // the line is lost
	clk.Advance(time.Hour)
	c.Start(devices.Low, clk.Now())
	defer c.Stop()
	clk.Advance(devices.DefaultLostEdgesClear)
	_, faults := rec.Take()
	if n := len(faults); n == 0 || faults[n-1].Kind != devices.FaultLostEdges || faults[n-1].Active {
		t.Errorf("faults %+v, want lost_edges cleared after the reopen", faults)
	}
}
