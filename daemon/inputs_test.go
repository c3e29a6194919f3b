package daemon_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon"
	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/devices/sim"
)

// metricValue returns the value of the sample whose name and labels start
// with series, or -1 if there is none.
func (r *running) metricValue(series string) float64 {
	r.t.Helper()
	for _, l := range strings.Split(r.metrics(), "\n") {
		if rest, ok := strings.CutPrefix(l, series); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// An engine stall long enough to fill the per-input hand-off buffer (here
// Engine.Hold; in the field a slow log write under the engine's lock) must
// end with the engine holding the line's true level: a smoke detector that
// chatters and then latches in alarm must end active, never at whatever
// level the buffer happened to hold when it filled (§4.4; a missed alarm
// is the worst bug).
func TestHandoffOverflowKeepsFinalLevel(t *testing.T) {
	r := startHall(t)
	door := r.sim.Input("door-1")
	door.Press()
	r.eventually("door-1 active", func() bool { return r.metricValue(`hallguard_input_active{input="door-1",kind="generic"}`) == 1 })

	release := r.d.Engine().Hold()
	held := true
	defer func() {
		if held {
			release()
		}
	}()
	// The release reaches conditioning, which blocks on the held engine.
	door.Release()
	time.Sleep(100 * time.Millisecond) // lets the hand-off goroutine take it (not an assertion)
	// 2000 more edges, many more than the buffer holds, ending pressed.
	for i := 0; i < 2000; i++ {
		if i%2 == 0 {
			door.Press()
		} else {
			door.Release()
		}
	}
	door.Press()
	release()
	held = false

	r.eventually("door-1 back at its true level, active", func() bool {
		return r.metricValue(`hallguard_input_active{input="door-1",kind="generic"}`) == 1
	})
	// The stall is not papered over: the drops are counted.
	if v := r.metricValue(`hallguard_input_handoff_dropped_total{input="door-1"}`); v <= 0 {
		t.Errorf("hand-off drops not counted (hallguard_input_handoff_dropped_total = %v)", v)
	}
	// And it stays at its true level once conditioning has settled.
	time.Sleep(200 * time.Millisecond)
	if v := r.metricValue(`hallguard_input_active{input="door-1",kind="generic"}`); v != 1 {
		t.Errorf("door-1 active = %v after settling, want 1 (the line is pressed)", v)
	}
}

// reopenYAML is a hall with a smoke detector whose verification window is
// longer than the daemon's 2 s reopen delay, and a confirm window short
// enough that only a detector still active counts as the second one.
const reopenYAML = `
hall: {id: t-hall, name: Test hall, location: 1 Test Road}
backend: sim
inputs:
  - {id: panic-1, kind: panic, variant: armed, line: 1}
  - {id: smoke-1, kind: smoke, line: 2}
  - {id: smoke-2, kind: smoke, line: 3}
  - {id: door-1, kind: generic, line: 4, stuck_after: 1s}
outputs:
  - {id: siren, line: 10, fail_safe: inactive, audible: true}
  - {id: power-cut, line: 11, fail_safe: inactive, live_only: true}
  - {id: police-link, line: 13, fail_safe: inactive, silent_ok: true}
smoke: {verify: persist, verify_window: 5s, confirm_window: 1s}
roles: [{id: supervisor}, {id: center_manager}, {id: general_manager}]
mqtt: {broker: embedded, listen: "127.0.0.1:0"}
http: {listen: "127.0.0.1:0", local_listen: "127.0.0.1:0"}
commands: {auth: none}
`

// lossyBackend is the sim with a hook to deliver what a hardware backend
// delivers when it missed edges.
type lossyBackend struct {
	*sim.Backend
	mu  sync.Mutex
	fns map[string]func(devices.Event)
	seq uint64
}

func lossy() (*lossyBackend, map[string]daemon.BackendFactory) {
	b := &lossyBackend{Backend: sim.New(nil), fns: map[string]func(devices.Event){}, seq: 1000}
	return b, map[string]daemon.BackendFactory{"sim": func(*config.Config, clock.Clock) (devices.Backend, error) { return b, nil }}
}

func (b *lossyBackend) OpenInput(spec devices.InputSpec) (devices.Input, error) {
	in, err := b.Backend.OpenInput(spec)
	if err != nil {
		return nil, err
	}
	return &lossyInput{Input: in, b: b}, nil
}

type lossyInput struct {
	devices.Input
	b *lossyBackend
}

func (in *lossyInput) Watch(ctx context.Context, fn func(devices.Event)) error {
	in.b.mu.Lock()
	in.b.fns[in.ID()] = fn
	in.b.mu.Unlock()
	return in.Input.Watch(ctx, fn)
}

// watched reports whether the daemon watches input id.
func (b *lossyBackend) watched(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fns[id] != nil
}

// missPulse delivers what gpiocdev delivers when the kernel lost a pulse's
// first edge: the second, back at the line's current level, after a
// sequence gap of one.
func (b *lossyBackend) missPulse(id string) {
	b.mu.Lock()
	fn := b.fns[id]
	b.seq += 2
	seq := b.seq
	b.mu.Unlock()
	l, _ := b.Backend.Input(id).Read()
	fn(devices.Event{Line: id, Level: l, Time: time.Now(), Seq: seq, Lost: 1})
}

// loseAndReopen makes the line fail, runs change while it is gone, and
// waits for the daemon to have reopened it.
func (r *running) loseAndReopen(id string, change func()) {
	r.t.Helper()
	lost := `hallguard_input_fault{fault="line_lost",input="` + id + `"}`
	r.sim.Input(id).Lose()
	r.eventually(id+" line_lost", func() bool { return r.metricValue(lost) == 1 })
	change()
	r.eventually(id+" reopened", func() bool { return r.metricValue(lost) == 0 })
}

// A line lost while active and reopened idle reports idle: the stuck fault
// it had clears, and the engine no longer holds it active (§3.2: no false
// report of a state the line is not in).
func TestReopenedLineReportsIdleAndClearsStuck(t *testing.T) {
	r := startHall(t, withYAML(reopenYAML))
	door := r.sim.Input("door-1")
	door.Press()
	r.eventually("stuck", func() bool { return r.metricValue(`hallguard_input_fault{fault="stuck",input="door-1"}`) == 1 })
	r.loseAndReopen("door-1", door.Release)
	r.eventually("door-1 idle after the reopen", func() bool {
		return r.metricValue(`hallguard_input_active{input="door-1",kind="generic"}`) == 0
	})
	r.eventually("stuck cleared after the reopen", func() bool {
		return r.metricValue(`hallguard_input_fault{fault="stuck",input="door-1"}`) == 0
	})
}

// A smoke detector in pre-alarm when its line dropped, back idle when the
// line returns, must not end in fire through the verification timer: that
// false alarm would cut the hall's power (§4.4 3, §3.2).
func TestReopenedIdleSmokeCancelsVerification(t *testing.T) {
	r := startHall(t, withYAML(reopenYAML))
	smoke := r.sim.Input("smoke-1")
	smoke.Press()
	r.eventually("smoke-1 active (pre-alarm)", func() bool {
		return r.metricValue(`hallguard_input_active{input="smoke-1",kind="smoke"}`) == 1
	})
	pressed := time.Now()
	r.loseAndReopen("smoke-1", smoke.Release)
	r.eventually("smoke-1 idle after the reopen", func() bool {
		return r.metricValue(`hallguard_input_active{input="smoke-1",kind="smoke"}`) == 0
	})
	// Past the 5 s verification window: still no fire.
	time.Sleep(time.Until(pressed.Add(6 * time.Second)))
	if v := r.metricValue(`hallguard_incidents_total{drill="false",origin="sensor",playbook="fire"}`); v > 0 {
		t.Fatalf("fire raised by a detector whose line came back idle (incidents_total %v)", v)
	}
	// The second detector alone is a pre-alarm, not a confirmation by a
	// stale "active" of the first (§4.4 two-detector rule).
	r.sim.Input("smoke-2").Press()
	r.eventually("smoke-2 active", func() bool {
		return r.metricValue(`hallguard_input_active{input="smoke-2",kind="smoke"}`) == 1
	})
	time.Sleep(200 * time.Millisecond)
	for _, inc := range r.d.Engine().Incidents() {
		if inc.Playbook == "fire" && strings.Contains(inc.Other, "two detectors") {
			t.Fatalf("fire confirmed by two detectors, one of them idle: %+v", inc)
		}
	}
}

// A pulse the backend missed on a panic line (a sequence gap that ends at
// the idle level) raises robbery, and the report says it was inferred from
// lost edges (§4.3: a doubtful signal on a hold-up input is an alarm).
// lost_edges trouble is raised as well. On a generic input the same gap is
// trouble only.
func TestMissedPulseOnPanicLineRaisesRobbery(t *testing.T) {
	b, backends := lossy()
	r := startHall(t, withOptions(daemon.Options{Backends: backends}))
	r.eventually("inputs watched", func() bool { return b.watched("panic-1") && b.watched("door-1") })

	b.missPulse("door-1")
	r.eventually("lost edges counted on door-1", func() bool {
		return r.metricValue(`hallguard_input_lost_edges_total{input="door-1"}`) == 1
	})
	if n := len(r.d.Engine().Incidents()); n != 0 {
		t.Fatalf("a missed pulse on a generic input raised %d incidents, want trouble only", n)
	}

	b.missPulse("panic-1")
	r.eventually("robbery raised", func() bool {
		return r.metricValue(`hallguard_incidents_total{drill="false",origin="button",playbook="robbery"}`) == 1
	})
	var inc engine.Incident
	for _, i := range r.d.Engine().Incidents() {
		if i.Playbook == "robbery" {
			inc = i
		}
	}
	found := false
	for _, m := range inc.Measures {
		found = found || strings.Contains(m.Text, "inferred from lost edges")
	}
	if !found {
		t.Errorf("robbery measures %+v do not say the activation was inferred from lost edges", inc.Measures)
	}
	if v := r.metricValue(`hallguard_input_lost_edges_total{input="panic-1"}`); v != 1 {
		t.Errorf("lost edges on panic-1 = %v, want 1 (trouble as well as the alarm)", v)
	}
	r.eventually("police link on", func() bool { return r.sim.Output("police-link").Level() == devices.High })
}
