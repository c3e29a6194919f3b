package engine_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/daemon/engine/enginetest"
	"github.com/hallguard/hallguard/devices/clock"
)

// historicEngine returns an engine that has raised and resolved n
// incidents, one a minute, and then kept running for a day.
func historicEngine(tb testing.TB, n int) *engine.Engine {
	tb.Helper()
	cfg, err := config.Parse(filepath.Join("..", "..", "configs", "engine-test.yaml"), []byte(hallYAML))
	if err != nil {
		tb.Fatal(err)
	}
	clk := clock.NewFake(t0)
	seq := 0
	e := engine.New(cfg, engine.Sinks{Sink: &discard{}}, engine.WithClock(clk), engine.WithIDs(func(time.Time) string {
		seq++
		return fmt.Sprintf("inc-%08d", seq)
	}))
	e.Start()
	tb.Cleanup(e.Close)
	for i := 0; i < n; i++ {
		id, err := e.Do(engine.Command{Verb: engine.VerbTrigger, Playbook: "illness", By: "Chen", Origin: engine.OriginStaff})
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := e.Do(engine.Command{Verb: engine.VerbResolve, Incident: id, By: "Chen", Origin: engine.OriginStaff}); err != nil {
			tb.Fatal(err)
		}
		clk.Advance(time.Minute)
	}
	clk.Advance(24 * time.Hour)
	return e
}

// discard is a Sink that keeps nothing, so that a benchmark measures the
// engine and not the recording.
type discard struct{ enginetest.Sink }

func (*discard) Report(engine.Report)       {}
func (*discard) Input(engine.InputState)    {}
func (*discard) Condition(engine.Condition) {}
func (*discard) Drive(string, bool, string) {}
func (*discard) Queue(engine.QueueState)    {}

// BenchmarkIncidentsWith20000Historic measures one Incidents() call, the
// console's poll (every 250 ms), with 20,000 historic incidents: the call
// holds the engine's lock from start to end.
func BenchmarkIncidentsWith20000Historic(b *testing.B) {
	benchHistoric(b, func(e *engine.Engine) { _ = e.Incidents() })
}

// benchHistoric measures call on an engine holding 20,000 historic
// incidents (historicEngine).
func benchHistoric(b *testing.B, call func(*engine.Engine)) {
	e := historicEngine(b, 20000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		call(e)
	}
}

// BenchmarkIncidentPageWith20000Historic measures one /api/incidents call
// (the first page, 100 incidents) with 20,000 historic incidents.
func BenchmarkIncidentPageWith20000Historic(b *testing.B) {
	benchHistoric(b, func(e *engine.Engine) { _ = e.IncidentPage(engine.IncidentQuery{Limit: 100}) })
}

// BenchmarkUnreviewedWith20000Historic measures the review_overdue gauge's
// call (each Prometheus scrape) with 20,000 historic incidents, none
// reviewed.
func BenchmarkUnreviewedWith20000Historic(b *testing.B) {
	benchHistoric(b, func(e *engine.Engine) { _ = e.Unreviewed() })
}

// BenchmarkHourlyCheckWith20000Historic measures the hourly check (overdue
// drills, incidents leaving memory, overdue reviews) with 20,000 incidents
// earlier runs closed: all reviewed, or none.
func BenchmarkHourlyCheckWith20000Historic(b *testing.B) {
	for _, reviewed := range []bool{true, false} {
		b.Run(fmt.Sprintf("reviewed=%v", reviewed), func(b *testing.B) {
			cfg, err := config.Parse(filepath.Join("..", "..", "configs", "engine-test.yaml"), []byte(hallYAML))
			if err != nil {
				b.Fatal(err)
			}
			clk := clock.NewFake(t0)
			cs := make([]engine.ClosedIncident, 0, 20000)
			for i := 0; i < 20000; i++ {
				cs = append(cs, engine.ClosedIncident{ID: fmt.Sprintf("old-%06d", i), Playbook: "illness", Resolution: engine.EventResolved,
					ResolvedAt: t0.Add(-30 * 24 * time.Hour), Reviewed: reviewed})
			}
			e := engine.New(cfg, engine.Sinks{Sink: &discard{}}, engine.WithClock(clk), engine.WithClosedIncidents(cs))
			e.Start()
			defer e.Close()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				clk.Advance(time.Hour)
			}
		})
	}
}
