package main

// hallguard end to end: a sim edge injected into the running binary (press
// panic-teller-1 on the control socket) to the robbery report, received by
// a subscriber (occurred_at -> receipt) and acknowledged by the broker (the
// daemon's hallguard_report_latency_seconds histogram, event -> PUBACK).
// Each round the robbery is resolved with a signed center command.

import (
	"fmt"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hallguard/hallguard/mqtt/command"
)

type presser struct {
	d        *daemon
	sim      *simConn
	c        paho.Client
	alerts   *inbox
	key      command.HMAC
	n        int
	released time.Time
	// changes0 is the button's hallguard_input_changes_total at the start:
	// each round adds a press and a release.
	changes0 float64
	// where the time goes: occurred_at -> sent_at (engine, outbox, sender)
	// and sent_at -> receipt (MQTT)
	inside, wire dist
}

func newPresser(d *daemon, c paho.Client, key command.HMAC) (*presser, error) {
	in, err := subscribe(c, d.root()+"/alerts/robbery")
	if err != nil {
		return nil, err
	}
	s, err := dialSim(d.sock())
	if err != nil {
		return nil, err
	}
	m, err := d.scrape()
	if err != nil {
		return nil, err
	}
	return &presser{d: d, sim: s, c: c, alerts: in, key: key, changes0: panicChangesOf(m)}, nil
}

// panicChanges counts panic-teller-1's conditioned changes (press, release).
const panicChanges = `hallguard_input_changes_total{input="panic-teller-1"`

func panicChangesOf(m metrics) float64 {
	var n float64
	for k, v := range m {
		if strings.HasPrefix(k, panicChanges) {
			n += v
		}
	}
	return n
}

// waitReleased waits until the daemon has reported the release of round
// n: the debounce lockout runs from the daemon's report, not from the sim
// request, and on a busy machine the two can be far apart.
func (p *presser) waitReleased() error {
	want := p.changes0 + float64(2*p.n)
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := p.d.scrape()
		if err == nil && panicChangesOf(m) >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: release of press %d not reported within 10s (changes %v, want %v)", p.d.hall, p.n, panicChangesOf(m), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// panicDebounce is panic-teller-1's debounce in configs/demo.yaml. The
// debounce is leading-edge: the press is reported at once and starts a
// lockout; the release, which comes within it here (right after the
// report), restarts it and is reported at its end, which starts one more.
// A press inside that would be taken for bounce and reported only at the
// end of the lockout, late, or not at all if the release is not reported
// yet (a release and a press within one lockout are a bounce of a held
// button): so the next press waits until the daemon has reported the
// release (waitReleased), then 2 debounce periods and 10 ms more.
const panicDebounce = 20 * time.Millisecond

// press raises a robbery and returns occurred_at -> receipt of its report;
// then it releases the button and resolves the robbery.
func (p *presser) press() (time.Duration, error) {
	if w := 2*panicDebounce + 10*time.Millisecond - time.Since(p.released); w > 0 {
		time.Sleep(w)
	}
	p.n++
	if err := p.sim.do("press panic-teller-1"); err != nil {
		return 0, err
	}
	m, err := p.alerts.take(10*time.Second, isRaised)
	if err != nil {
		return 0, fmt.Errorf("%s: robbery report: %w", p.d.hall, err)
	}
	r, _ := parseReport(m)
	occurred, err := time.Parse(time.RFC3339Nano, r.OccurredAt)
	if err != nil {
		return 0, err
	}
	if sent, err := time.Parse(time.RFC3339Nano, r.SentAt); err == nil {
		p.inside, p.wire = append(p.inside, sent.Sub(occurred)), append(p.wire, m.At.Sub(sent))
	}
	if err := p.sim.do("release panic-teller-1"); err != nil {
		return 0, err
	}
	if err := p.waitReleased(); err != nil {
		return 0, err
	}
	p.released = time.Now()
	if err := sendCommand(p.c, p.key, p.d.hall, "resolve", command.Message{ID: fmt.Sprintf("bench-res-%d-%d", time.Now().UnixNano(), p.n), Incident: r.Incident, By: "bench-center"}); err != nil {
		return 0, err
	}
	if err := waitResolved(p.alerts, r.Incident); err != nil {
		return 0, fmt.Errorf("%s: resolved report: %w", p.d.hall, err)
	}
	return m.At.Sub(occurred), nil
}

// triggerer raises a manual playbook with a signed cmd/trigger (the MQTT
// trigger path) and resolves it: the counterpart of the Node-RED flow.
type triggerer struct {
	d      *daemon
	c      paho.Client
	alerts *inbox
	key    command.HMAC
	n      int
}

func newTriggerer(d *daemon, c paho.Client, key command.HMAC) (*triggerer, error) {
	in, err := subscribe(c, d.root()+"/alerts/illness")
	if err != nil {
		return nil, err
	}
	return &triggerer{d: d, c: c, alerts: in, key: key}, nil
}

// trigger publishes cmd/trigger and returns publish -> receipt of the
// alert; then resolves the incident.
func (t *triggerer) trigger() (time.Duration, error) {
	t.n++
	pl, err := command.Sign(t.key, t.d.hall, t.d.root()+"/cmd/trigger", command.Message{ID: fmt.Sprintf("bench-trig-%d-%d", time.Now().UnixNano(), t.n), Playbook: "illness", By: "bench-center"}, time.Now())
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := publish(t.c, t.d.root()+"/cmd/trigger", pl); err != nil {
		return 0, err
	}
	m, err := t.alerts.take(10*time.Second, isRaised)
	if err != nil {
		return 0, fmt.Errorf("%s: illness report: %w", t.d.hall, err)
	}
	lat := m.At.Sub(t0)
	r, _ := parseReport(m)
	if err := sendCommand(t.c, t.key, t.d.hall, "resolve", command.Message{ID: fmt.Sprintf("bench-tres-%d-%d", time.Now().UnixNano(), t.n), Incident: r.Incident, By: "bench-center"}); err != nil {
		return 0, err
	}
	if err := waitResolved(t.alerts, r.Incident); err != nil {
		return 0, fmt.Errorf("%s: resolved report: %w", t.d.hall, err)
	}
	return lat, nil
}
