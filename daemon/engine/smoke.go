package engine

import (
	"fmt"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/clock"
)

// smokeDetector is alarm verification for smoke inputs (§4.4), as fire
// panels do it to avoid false alarms (§3.2) without delaying real fire:
//   - persist: a detector must stay active for the verify window;
//   - retrigger: a detector that resets and triggers again within the
//     confirm window is fire (and one that stays active for the verify
//     window is too);
//   - none: every activation is fire at once.
//
// In every mode a second detector active within the confirm window confirms
// at once. An active detector not yet verified is a pre-alarm.
type smokeDetector struct {
	e         *Engine
	verifying map[string]clock.Timer
	activated map[string]time.Time // last activation per detector
	reset     map[string]time.Time // last reset after a pre-alarm
}

func newSmokeDetector(e *Engine) *smokeDetector {
	return &smokeDetector{e: e, verifying: map[string]clock.Timer{}, activated: map[string]time.Time{}, reset: map[string]time.Time{}}
}

func (d *smokeDetector) stop() {
	for id, t := range d.verifying {
		t.Stop()
		delete(d.verifying, id)
	}
}

func (d *smokeDetector) signal(s *inputState, sg devices.Signal) {
	e, cfg, id := d.e, d.e.cfg.Smoke, s.cfg.ID
	now := e.clk.Now()
	if !sg.Active {
		if t := d.verifying[id]; t != nil {
			t.Stop()
			delete(d.verifying, id)
			d.reset[id] = sg.Time
			e.sink.Condition(Condition{Class: ClassSupervisory, Kind: "pre_alarm", Input: id, Active: false, Time: sg.Time, Detail: "cleared before verification"})
		}
		return
	}
	if e.openIncident("fire", false) != nil {
		e.raiseFire(id, OriginSensor, sg.Time, sg.Time, "")
		return
	}
	if cfg.Verify == config.VerifyNone {
		e.raiseFire(id, OriginSensor, sg.Time, sg.Time, "smoke detector "+id)
		return
	}
	window := cfg.ConfirmWindow.D()
	for other, t := range d.activated {
		o := e.inputs[other]
		if other == id || o == nil {
			continue
		}
		if o.active || now.Sub(t) <= window {
			d.fire(sg.Time, fmt.Sprintf("two detectors: %s then %s within %s", other, id, window), other, id)
			return
		}
	}
	if cfg.Verify == config.VerifyRetrigger {
		if t, ok := d.reset[id]; ok && sg.Time.Sub(t) <= window {
			d.fire(sg.Time, fmt.Sprintf("%s re-triggered %s after reset", id, sg.Time.Sub(t).Round(time.Millisecond)), id)
			return
		}
	}
	d.activated[id] = sg.Time
	s.state = "pre-alarm"
	e.sink.Condition(Condition{Class: ClassSupervisory, Kind: "pre_alarm", Input: id, Active: true, Time: sg.Time,
		Detail: fmt.Sprintf("smoke not yet verified (%s, %s)", cfg.Verify, cfg.VerifyWindow.D())})
	first := sg.Time
	if t := d.verifying[id]; t != nil {
		t.Stop()
	}
	d.verifying[id] = e.after(cfg.VerifyWindow.D(), func() {
		delete(d.verifying, id)
		if e.inputs[id].active {
			d.fire(first, fmt.Sprintf("%s active for %s", id, cfg.VerifyWindow.D()), id)
		}
	})
}

// fire raises the verified fire and clears the detectors' pre-alarms.
func (d *smokeDetector) fire(first time.Time, why string, ids ...string) {
	e := d.e
	now := e.clk.Now()
	for _, id := range ids {
		if t := d.verifying[id]; t != nil {
			t.Stop()
			delete(d.verifying, id)
		}
		if s := e.inputs[id]; s != nil && s.state == "pre-alarm" {
			s.state = ""
			e.sink.Condition(Condition{Class: ClassSupervisory, Kind: "pre_alarm", Input: id, Active: false, Time: now, Detail: "verified: fire"})
			e.publishInput(s)
		}
	}
	e.raiseFire(ids[0], OriginSensor, first, now, "verified smoke: "+why, ids[1:]...)
}
