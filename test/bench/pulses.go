package main

// Counter throughput: queue pulses per second the whole daemon absorbs with
// none lost, checked against hallguard_queue_arrivals_total.
//
// The bench config gives every counter a 1 ms debounce (demo.yaml: 5 ms)
// and adds counters, all direction in. Each counter is driven by its own
// control connection with `pulse ID 2ms` (the daemon holds the line active
// 2 ms, then releases it and answers) followed by a 1.5 ms pause: both
// edges fall outside the 1 ms leading-edge lockout, so a pulse can only be
// lost when the daemon falls behind (a late edge lands in a lockout and is
// taken for contact bounce) or drops an edge. One counter can carry about
// 1/(2 ms + 1.5 ms + round trip) pulses a second; the ramp drives 1, 2, 4,
// ... 32 counters at once and stops at the first step that loses a pulse
// (a step that loses one is run once more, and the second run counts: the
// machine is shared).

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
)

const (
	pulseWidth    = 2 * time.Millisecond
	pulseGap      = 1500 * time.Microsecond
	pulseDebounce = "1ms"
	maxCounters   = 32
)

// counterIDs are the arrival counters of the pulse config.
func counterIDs() []string {
	ids := []string{"beam-entrance", "ticket-dispenser"}
	for i := 1; len(ids) < maxCounters; i++ {
		ids = append(ids, fmt.Sprintf("counter-%d", i))
	}
	return ids
}

// pulseConfigEdit sets a 1 ms debounce on the counters, adds counters, and
// leaves the queue's surge detection off (it would raise a surge incident
// after surge_after: not what is measured here).
func pulseConfigEdit(s string) string {
	s = regexp.MustCompile(`(kind: counter, direction: (?:in|out), line: \d+, debounce: )5ms`).ReplaceAllString(s, "${1}"+pulseDebounce)
	var extra strings.Builder
	for i, id := range counterIDs()[2:] {
		fmt.Fprintf(&extra, "  - {id: %s, name: Bench counter %d, kind: counter, direction: in, line: %d, debounce: %s}\n", id, i+1, 100+i, pulseDebounce)
	}
	s = regexp.MustCompile(`(?m)^(  - \{id: next-customer,.*\n)`).ReplaceAllString(s, "${1}"+extra.String())
	s = regexp.MustCompile(`(?m)^queue:\n(  .*\n)+`).ReplaceAllString(s, "queue:\n  daily_reset: \"03:00\"\n")
	return s
}

type pulseStep struct {
	counters int
	sent     int
	arrived  int
	seconds  float64 // driving time
	cpu      cpuSample
	lostEdge float64 // hallguard_input_lost_edges_total + handoff drops
	// retried: the first run of the step lost firstLost pulses; this is
	// the second.
	retried   bool
	firstLost int
}

func (s pulseStep) retriedNote() string {
	if !s.retried {
		return ""
	}
	return fmt.Sprintf("; 2nd run, the 1st lost %d", s.firstLost)
}

func (s pulseStep) offered() float64  { return float64(s.sent) / s.seconds }
func (s pulseStep) absorbed() float64 { return float64(s.arrived) / s.seconds }
func (s pulseStep) lost() int         { return s.sent - s.arrived }

// runPulseStep drives n counters for dur and waits for the arrivals.
func runPulseStep(d *daemon, n int, dur time.Duration) (pulseStep, error) {
	st := pulseStep{counters: n}
	before, err := d.scrape()
	if err != nil {
		return st, err
	}
	conns := make([]*simConn, n)
	for i, id := range counterIDs()[:n] {
		c, err := dialSim(d.sock())
		if err != nil {
			return st, err
		}
		defer c.close()
		conns[i] = c
		_ = id
	}
	cpu0 := sampleCPU(d.p.pid())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	t0 := time.Now()
	end := t0.Add(dur)
	for i, id := range counterIDs()[:n] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent := 0
			req := "pulse " + id + " " + pulseWidth.String()
			for time.Now().Before(end) {
				if err := conns[i].do(req); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					break
				}
				sent++
				time.Sleep(pulseGap)
			}
			mu.Lock()
			st.sent += sent
			mu.Unlock()
		}()
	}
	wg.Wait()
	st.seconds = time.Since(t0).Seconds()
	if firstErr != nil {
		return st, firstErr
	}
	// Let the daemon finish what it has queued.
	want := before.sum("hallguard_queue_arrivals_total") + float64(st.sent)
	var after metrics
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if after, err = d.scrape(); err != nil {
			return st, err
		}
		if after.sum("hallguard_queue_arrivals_total") >= want || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(50 * time.Millisecond) // the state publishes after the last pulse
	st.cpu = sampleCPU(d.p.pid()).sub(cpu0)
	if after, err = d.scrape(); err != nil {
		return st, err
	}
	st.arrived = int(after.sum("hallguard_queue_arrivals_total") - before.sum("hallguard_queue_arrivals_total"))
	st.lostEdge = after.sum("hallguard_input_lost_edges_total") - before.sum("hallguard_input_lost_edges_total") +
		after.sum("hallguard_input_handoff_dropped_total") - before.sum("hallguard_input_handoff_dropped_total")
	return st, nil
}
