package devices_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/clock"
)

// trace keeps what a Conditioner reports, in order, as short lines: the
// time from t0 and "active"/"inactive" for a Signal, the kind and "on"/"off"
// for a Fault.
type trace struct {
	mu  sync.Mutex
	out []string
}

func (r *trace) add(t time.Time, what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.out = append(r.out, fmt.Sprintf("%v %s", t.Sub(t0), what))
}

func (r *trace) Signal(s devices.Signal) {
	w := map[bool]string{true: "active", false: "inactive"}[s.Active]
	if s.Inferred {
		w += " inferred"
	}
	r.add(s.Time, w)
}

func (r *trace) Fault(f devices.Fault) {
	w := string(f.Kind) + map[bool]string{true: " on", false: " off"}[f.Active]
	if f.Count > 0 {
		w += fmt.Sprintf(" count=%d", f.Count)
	}
	r.add(f.Time, w)
}

// edge is one raw edge at a time after t0 (the conditioner starts at t0).
type edge struct {
	at    time.Duration
	level devices.Level
	lost  uint64
}

// TestConditionTable drives a Conditioner with the level read at Start and
// a list of raw edges, lets the fake clock run to until, and compares what
// it reported, in order, in the style of periph's gpioutil debounce tests.
// Each case covers one condition of devices/condition.go: the contact
// mapping, the first Start, leading-edge debounce and its quiet period,
// stuck and loop-open faults raised and cleared, and lost_edges.
func TestConditionTable(t *testing.T) {
	const (
		H = devices.High
		L = devices.Low
		D = 50 * time.Millisecond // debounce in the debounce cases
	)
	ms := time.Millisecond
	cases := []struct {
		name  string
		spec  devices.ConditionSpec
		start devices.Level
		edges []edge
		until time.Duration
		want  []string
	}{
		// Contact mapping, no debounce: every change is reported at its edge.
		{"NO press and release", devices.ConditionSpec{Contact: devices.NO},
			L, []edge{{0, H, 0}, {time.Second, L, 0}}, time.Minute,
			[]string{"0s active", "1s inactive"}},
		{"empty contact is NO", devices.ConditionSpec{},
			L, []edge{{0, H, 0}, {time.Second, L, 0}}, time.Minute,
			[]string{"0s active", "1s inactive"}},
		{"NC opens and closes", devices.ConditionSpec{Contact: devices.NC},
			H, []edge{{0, L, 0}, {time.Second, H, 0}}, time.Minute,
			[]string{"0s active", "1s inactive"}},
		{"no debounce reports every edge", devices.ConditionSpec{},
			L, []edge{{0, H, 0}, {ms, L, 0}, {2 * ms, H, 0}}, time.Minute,
			[]string{"0s active", "1ms inactive", "2ms active"}},
		{"edge to the reported level is not reported", devices.ConditionSpec{},
			L, []edge{{0, L, 0}}, time.Minute,
			nil},

		// First Start: a line already active is reported at once.
		{"NO active at start", devices.ConditionSpec{},
			H, nil, time.Minute,
			[]string{"0s active"}},
		{"NC open at start", devices.ConditionSpec{Contact: devices.NC},
			L, nil, time.Minute,
			[]string{"0s active"}},
		{"NC closed at start is idle", devices.ConditionSpec{Contact: devices.NC},
			H, nil, time.Minute,
			nil},

		// Debounce is leading-edge: the press is reported at its edge, the
		// chatter after it absorbed.
		{"debounce absorbs chatter after a press", devices.ConditionSpec{Debounce: D},
			L, []edge{{0, H, 0}, {5 * ms, L, 0}, {10 * ms, H, 0}}, time.Second,
			[]string{"0s active"}},
		{"debounce reports a release seen in the lockout once quiet", devices.ConditionSpec{Debounce: D},
			L, []edge{{0, H, 0}, {10 * ms, L, 0}}, time.Second,
			[]string{"0s active", "10ms inactive"}},
		{"debounce quiet period restarts with each bounce", devices.ConditionSpec{Debounce: D},
			L, []edge{{0, H, 0}, {40 * ms, L, 0}, {80 * ms, H, 0}, {120 * ms, L, 0}}, time.Second,
			[]string{"0s active", "120ms inactive"}},
		{"debounce: a change after the quiet period is leading again", devices.ConditionSpec{Debounce: D},
			L, []edge{{0, H, 0}, {D, L, 0}, {D + ms, H, 0}}, time.Second,
			[]string{"0s active", "50ms inactive", "51ms active"}},

		// Stuck (NO) and loop-open (NC) after StuckAfter active.
		{"NO stuck raised after StuckAfter and cleared by the release", devices.ConditionSpec{StuckAfter: time.Minute},
			L, []edge{{0, H, 0}, {90 * time.Second, L, 0}}, 5 * time.Minute,
			[]string{"0s active", "1m0s stuck on", "1m30s inactive", "1m30s stuck off"}},
		{"NC loop open raised after StuckAfter", devices.ConditionSpec{Contact: devices.NC, StuckAfter: time.Minute},
			H, []edge{{0, L, 0}}, 5 * time.Minute,
			[]string{"0s active", "1m0s loop_open on"}},
		{"stuck timer runs from an active start", devices.ConditionSpec{StuckAfter: time.Minute},
			H, nil, 5 * time.Minute,
			[]string{"0s active", "1m0s stuck on"}},
		{"no stuck when released in time", devices.ConditionSpec{StuckAfter: time.Minute},
			L, []edge{{0, H, 0}, {59 * time.Second, L, 0}}, 5 * time.Minute,
			[]string{"0s active", "59s inactive"}},
		{"stuck timer restarts at each press", devices.ConditionSpec{StuckAfter: time.Minute},
			L, []edge{{0, H, 0}, {30 * time.Second, L, 0}, {40 * time.Second, H, 0}}, 5 * time.Minute,
			[]string{"0s active", "30s inactive", "40s active", "1m40s stuck on"}},
		{"StuckAfter 0 raises nothing", devices.ConditionSpec{},
			L, []edge{{0, H, 0}}, time.Hour,
			[]string{"0s active"}},

		// lost_edges: raised with the count, cleared after LostEdgesClear
		// (default DefaultLostEdgesClear) without another loss.
		{"lost edges raised and cleared after the default", devices.ConditionSpec{},
			L, []edge{{0, H, 3}}, time.Hour,
			[]string{"0s lost_edges on count=3", "0s active", "1m0s lost_edges off"}},
		{"lost edges clear after LostEdgesClear", devices.ConditionSpec{LostEdgesClear: 10 * time.Second},
			L, []edge{{0, L, 1}}, time.Hour,
			[]string{"0s lost_edges on count=1", "10s lost_edges off"}},
		{"alarm input: hidden pulse is an inferred activation", devices.ConditionSpec{Alarm: true},
			L, []edge{{0, L, 1}}, time.Hour,
			[]string{"0s lost_edges on count=1", "0s active inferred", "0s inactive", "1m0s lost_edges off"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(t0)
			rec := &trace{}
			spec := tc.spec
			spec.ID = "in"
			c := devices.NewConditioner(spec, clk, rec)
			defer c.Stop()
			c.Start(tc.start, clk.Now())
			for i, e := range tc.edges {
				clk.Advance(t0.Add(e.at).Sub(clk.Now()))
				c.Edge(devices.Event{Line: "in", Level: e.level, Time: clk.Now(), Seq: uint64(i+1) + e.lost, Lost: e.lost})
			}
			clk.Advance(t0.Add(tc.until).Sub(clk.Now()))
			rec.mu.Lock()
			got := rec.out
			rec.mu.Unlock()
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
