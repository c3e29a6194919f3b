package engine

import (
	"fmt"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/clock"
)

// smokeDetector is alarm verification for smoke inputs (§4.4), as fire
// panels do it to avoid false alarms (§3.2) without delaying real fire.
// Its cycle is the standard reset, retard, confirmation:
//
//  1. alarm: a detector goes active; it is a pre-alarm (supervisory) and
//     its verification starts;
//  2. reset: the detector clears before it is verified; the pre-alarm
//     clears;
//  3. confirmation: if the same detector alarms again within the confirm
//     window after that reset, it is fire at once, dated from its first
//     alarm. Past the confirm window a new alarm starts a new cycle.
//
// The modes differ only in step 1:
//   - persist: a detector that stays active for the verify window is fire;
//   - retrigger: the same (the name is kept for configs that set it);
//   - none: every activation is fire at once.
//
// In every mode a re-alarm within the confirm window confirms, and a second
// detector active within the confirm window confirms at once.
type smokeDetector struct {
	e         *Engine
	verifying map[string]clock.Timer
	// activated is each detector's last activation that started a cycle:
	// the first alarm of its current one.
	activated map[string]time.Time
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
		e.raiseFire(raising{origin: OriginSensor, source: id, at: sg.Time, trigger: sg.Time})
		return
	}
	if cfg.Verify == config.VerifyNone {
		e.raiseFire(raising{origin: OriginSensor, source: id, at: sg.Time, trigger: sg.Time, why: "smoke detector " + id})
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
	// Confirmation, in every mode: the detector re-alarms within the
	// confirm window after its reset.
	if t, ok := d.reset[id]; ok && sg.Time.Sub(t) <= window {
		first := d.activated[id] // a reset follows a pre-alarm, so its cycle's start is known
		delete(d.reset, id)
		d.fire(first, fmt.Sprintf("%s re-alarmed %s after its reset (alarm %s, confirm window %s)", id,
			sg.Time.Sub(t).Round(time.Millisecond), first.UTC().Format(time.RFC3339), window), id)
		return
	}
	d.activated[id] = sg.Time
	delete(d.reset, id)
	s.state = "pre-alarm"
	e.sink.Condition(Condition{Class: ClassSupervisory, Kind: "pre_alarm", Input: id, Active: true, Time: sg.Time,
		Detail: fmt.Sprintf("smoke not yet verified (%s, %s; a re-alarm within %s confirms)", cfg.Verify, cfg.VerifyWindow.D(), window)})
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
	e.raiseFire(raising{origin: OriginSensor, source: ids[0], at: first, trigger: now, why: "verified smoke: " + why, inputs: ids[1:]})
}
