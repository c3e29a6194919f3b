package engine

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/devices/clock"
)

// queueModel keeps the queue length from arrival and departure pulses and
// detects a surge of customers (§4.1) with hysteresis: a surge starts when
// the length or the arrival rate stays at or above its threshold for
// surge_after, and ends when both stay at or below their clear thresholds
// for clear_after.
type queueModel struct {
	e          *Engine
	q          config.Queue
	length     int
	arrivals   []time.Time
	nArr, nDep uint64
	surge      bool
	pending    clock.Timer // surge start or end confirmation
	expiry     clock.Timer // re-evaluation when an arrival leaves the window
	daily      clock.Timer
}

func newQueueModel(e *Engine) *queueModel { return &queueModel{e: e, q: e.cfg.Queue} }

func (m *queueModel) enabled() bool { return m.q.SurgeLength > 0 || m.q.SurgeRate > 0 }

func (m *queueModel) start() {
	m.scheduleDaily()
	m.publish()
}

func (m *queueModel) stop() {
	for _, t := range []clock.Timer{m.pending, m.expiry, m.daily} {
		if t != nil {
			t.Stop()
		}
	}
	m.pending, m.expiry, m.daily = nil, nil, nil
}

func (m *queueModel) pulse(direction string, at time.Time) {
	now := m.e.clk.Now()
	if direction == "in" {
		m.length++
		m.nArr++
		m.arrivals = append(m.arrivals, now)
	} else {
		m.nDep++
		if m.length > 0 { // clamped at 0: a departure pulse with nobody counted in
			m.length--
		}
	}
	m.evaluate()
	m.publish()
}

func (m *queueModel) rate(now time.Time) float64 {
	w := m.q.RateWindow.D()
	cut := now.Add(-w)
	i := 0
	for i < len(m.arrivals) && !m.arrivals[i].After(cut) {
		i++
	}
	m.arrivals = m.arrivals[i:]
	return float64(len(m.arrivals)) / w.Minutes()
}

func (m *queueModel) above(rate float64) bool {
	return (m.q.SurgeLength > 0 && m.length >= m.q.SurgeLength) || (m.q.SurgeRate > 0 && rate >= m.q.SurgeRate)
}

func (m *queueModel) below(rate float64) bool {
	return (m.q.SurgeLength == 0 || m.length <= m.q.ClearLength) && (m.q.SurgeRate == 0 || rate <= m.q.ClearRate)
}

func (m *queueModel) evaluate() {
	now := m.e.clk.Now()
	rate := m.rate(now)
	if m.expiry != nil {
		m.expiry.Stop()
		m.expiry = nil
	}
	if len(m.arrivals) > 0 {
		d := m.arrivals[0].Add(m.q.RateWindow.D()).Sub(now) + time.Millisecond
		m.expiry = m.e.after(d, func() {
			m.expiry = nil
			m.evaluate()
			m.publish()
		})
	}
	if !m.enabled() {
		return
	}
	cond, wait := m.above(rate), m.q.SurgeAfter.D()
	if m.surge {
		cond, wait = m.below(rate), m.q.ClearAfter.D()
	}
	switch {
	case cond && m.pending == nil:
		m.pending = m.e.after(wait, func() {
			m.pending = nil
			m.flip()
		})
	case !cond && m.pending != nil:
		m.pending.Stop()
		m.pending = nil
	}
}

// flip runs when the pending condition has held for its whole time.
func (m *queueModel) flip() {
	e := m.e
	now := e.clk.Now()
	rate := m.rate(now)
	m.surge = !m.surge
	pb := e.cfg.Playbook("surge")
	if m.surge {
		why := fmt.Sprintf("queue length %d, arrivals %.1f/min for %s (thresholds %d, %.1f/min)",
			m.length, rate, m.q.SurgeAfter.D(), m.q.SurgeLength, m.q.SurgeRate)
		if pb != nil && e.openIncident("surge", false) == nil {
			e.raise(raising{pb: pb, origin: OriginSensor, source: "queue", at: now, trigger: now, why: why, trend: "rising"})
		}
	} else if inc := e.openIncident("surge", false); inc != nil {
		inc.Trend = "easing"
		inc.measure(Measure{At: now, Kind: "note", By: "hallguard",
			Text: fmt.Sprintf("queue back below clear thresholds for %s (length %d, %.1f/min)", m.q.ClearAfter.D(), m.length, rate)})
		e.report(inc, EventUpdate, nil, time.Time{})
	}
	m.evaluate()
	m.publish()
}

func (m *queueModel) state() QueueState {
	now := m.e.clk.Now()
	return QueueState{Length: m.length, Rate: m.rate(now), Arrivals: m.nArr, Departures: m.nDep, Surge: m.surge, At: now}
}

func (m *queueModel) publish() { m.e.sink.Queue(m.state()) }

func (m *queueModel) scheduleDaily() {
	hh, mm := 0, 0
	if parts := strings.SplitN(m.q.DailyReset, ":", 2); len(parts) == 2 {
		hh, _ = strconv.Atoi(parts[0])
		mm, _ = strconv.Atoi(parts[1])
	}
	now := m.e.clk.Now()
	next := time.Date(now.Year(), now.Month(), now.Day(), hh, mm, 0, 0, now.Location())
	if !next.After(now) {
		next = next.AddDate(0, 0, 1)
	}
	m.daily = m.e.after(next.Sub(now), func() {
		m.length = 0
		m.evaluate()
		m.publish()
		m.scheduleDaily()
	})
}
