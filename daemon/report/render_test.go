package report_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/daemon/engine/enginetest"
	"github.com/hallguard/hallguard/daemon/report"
	"github.com/hallguard/hallguard/devices/clock"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// incidentJournal runs a surge from report to review on a fake clock and
// returns its journal records as `journal export` writes them.
func incidentJournal(t *testing.T) (string, []byte) {
	t.Helper()
	cfg, err := config.Load(filepath.Join("..", "..", "configs", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 1, 15, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	sink := &enginetest.Sink{}
	e := engine.New(cfg, sink.Sinks(), engine.WithClock(clk), engine.WithIDs(func(time.Time) string { return "20261201T011500.000Z-a1b2c3" }))
	e.Start()
	defer e.Close()
	do := func(c engine.Command) {
		t.Helper()
		c.Origin = engine.OriginStaff
		if _, err := e.Do(c); err != nil {
			t.Fatal(err)
		}
	}
	do(engine.Command{Verb: engine.VerbTrigger, Playbook: "illness", By: "Chen Jing"})
	id := "20261201T011500.000Z-a1b2c3"
	e.Delivered(id+".v1", t0.Add(4*time.Millisecond))
	clk.Advance(40 * time.Second)
	do(engine.Command{Verb: engine.VerbAck, Incident: id, By: "op-7"})
	impact, control := "one customer fainted", "first aid given; ambulance on its way"
	do(engine.Command{Verb: engine.VerbReport, Incident: id, By: "Chen Jing", Impact: &impact, Control: &control,
		ImpactDetail: map[string]string{"casualties": "one customer, conscious", "scope": "counter 2 | waiting area"}})
	clk.Advance(2 * time.Minute)
	inc, _ := e.Incident(id)
	do(engine.Command{Verb: engine.VerbStep, Incident: id, Step: inc.Steps[0].ID, By: "Liu Yang"})
	clk.Advance(10 * time.Minute)
	do(engine.Command{Verb: engine.VerbResolve, Incident: id, By: "Chen Jing"})
	clk.Advance(48 * time.Hour)
	do(engine.Command{Verb: engine.VerbReview, Incident: id, By: "Wang Lei", Review: &engine.Review{
		Cause: "heat in the waiting area", Course: "fainted while queueing; staff saw at once", Handling: "first aid, 120 called, family told",
		Problems: "first-aid kit in the back office", Actions: []engine.ReviewAction{{Owner: "Li Na", Due: "2026-12-15", Text: "kit at the front desk"}}}})

	var buf bytes.Buffer
	sink.Lock()
	defer sink.Unlock()
	for _, r := range sink.Reports {
		data, _ := json.Marshal(map[string]any{"id": r.ID, "report": r})
		line, _ := json.Marshal(map[string]any{"kind": "report", "incident": r.Incident, "data": json.RawMessage(data)})
		buf.Write(append(line, '\n'))
	}
	for _, rv := range sink.Reviews {
		data, _ := json.Marshal(rv)
		line, _ := json.Marshal(map[string]any{"kind": "review", "incident": rv.Incident, "data": json.RawMessage(data)})
		buf.Write(append(line, '\n'))
	}
	buf.WriteString(`{"kind":"report","incident":"another","data":{"report":{}}}` + "\n")
	return id, buf.Bytes()
}

func TestIncidentReportGolden(t *testing.T) {
	id, jsonl := incidentJournal(t)
	f, err := report.ReadIncident(bytes.NewReader(jsonl), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Reports) != 6 || f.Review == nil {
		t.Fatalf("%d reports, review %v", len(f.Reports), f.Review)
	}
	for _, tc := range []struct {
		golden string
		render func(*bytes.Buffer) error
	}{
		{"report.both.md", func(b *bytes.Buffer) error { return report.RenderMarkdown(b, f, "both") }},
		{"report.zh.md", func(b *bytes.Buffer) error { return report.RenderMarkdown(b, f, "zh") }},
		{"report.en.md", func(b *bytes.Buffer) error { return report.RenderMarkdown(b, f, "en") }},
		{"report.json", func(b *bytes.Buffer) error { return report.RenderJSON(b, f) }},
	} {
		var b bytes.Buffer
		if err := tc.render(&b); err != nil {
			t.Fatalf("%s: %v", tc.golden, err)
		}
		path := filepath.Join("testdata", tc.golden)
		if *update {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestIncidentReportGolden -update)", err)
		}
		if !bytes.Equal(b.Bytes(), want) {
			t.Errorf("%s differs from the golden file:\n%s", tc.golden, b.String())
		}
	}
	if _, err := report.ReadIncident(bytes.NewReader(jsonl), "nope"); err == nil {
		t.Error("an incident without reports rendered")
	}
	if err := report.RenderMarkdown(&bytes.Buffer{}, f, "fr"); err == nil {
		t.Error("lang fr accepted")
	}
}
