package engine_test

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
)

// fullReport has every field of a report set. testdata/report-07a6525.json
// is its acknowledged version (2) as the journal stored it before Report had
// json tags: encoded by encoding/json at commit 07a6525, Go field names.
func fullReport() engine.Report {
	t := func(s int) time.Time { return time.Date(2026, 12, 1, 9, 0, s, 500, time.UTC) }
	tp := func(s int) *time.Time { x := t(s); return &x }
	after := 12.5
	return engine.Report{
		ID: "inc-1.v2", Incident: "inc-1", Seq: 42, Version: 2, Event: engine.EventAcknowledged,
		Playbook: "robbery", Section: "§4.3(b)", Variant: "armed", Origin: engine.OriginButton, Source: "panic_teller_1",
		State: engine.StateAcknowledged, Drill: true, Test: true, Silent: true,
		Hall:       config.Hall{ID: "hall-7", Name: "Hall Seven", Location: "Main St 1", Region: "north"},
		OccurredAt: t(1), Type: config.Text{ZH: "抢劫", EN: "robbery"}, Impact: "two tellers",
		ImpactDetail: &engine.ImpactDetail{Property: "p", CashVouchers: "c", Casualties: "none", Scope: "hall"},
		Measures:     []engine.Measure{{At: t(2), Kind: "output", Text: "police link", Section: "§4.3", By: "daemon"}},
		Control:      "contained", Trend: "calm", Other: "none",
		Steps: []engine.StepState{{ID: "call_police", Section: "§4.3(b)2", Text: config.Text{ZH: "报警", EN: "call the police"},
			Done: true, By: "Chen", At: t(3), Records: []string{"rec-1"}, Action: "preserve_cctv"}},
		Escalation: &engine.EscalationInfo{Level: 2, Role: "security", Title: "head of security", Name: "Li", Contact: "+86 1", After: 90 * time.Second},
		Timeline: &engine.Timeline{DetectedAt: tp(1), ActivatedAt: tp(1), FirstReportAt: tp(2), DeliveredAt: tp(2), AcknowledgedAt: tp(4), AcknowledgedBy: "center",
			Steps: []engine.TimelineStep{{ID: "call_police", Section: "§4.3(b)2", Done: true, By: "Chen", At: tp(3), AfterSeconds: &after}}},
		Review: &engine.Review{Incident: "inc-1", Hall: "hall-7", Playbook: "robbery", Resolution: "resolved", ResolvedAt: t(9),
			Cause: "c", Course: "co", Handling: "h", Problems: "p", By: "Wang", At: t(10)},
		Presses:  3,
		Inputs:   []string{"panic_teller_1", "panic_teller_2"},
		Variants: []string{"armed", "gas"},
		Created:  t(5), Trigger: t(6),
	}
}

// A report journalled before Report had json tags (Go field names:
// "OccurredAt", "ImpactDetail", "Hall":{"ID"…}) still reads, every field.
func TestReportReadsOldEncoding(t *testing.T) {
	old, err := os.ReadFile("testdata/report-07a6525.json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(old), `"OccurredAt":`) || !strings.Contains(string(old), `"Hall":{"ID":`) {
		t.Fatalf("testdata is not in the old encoding: %.120s", old)
	}
	var got engine.Report
	if err := json.Unmarshal(old, &got); err != nil {
		t.Fatal(err)
	}
	want := fullReport()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("old report read as\n%+v\nwant\n%+v", got, want)
	}
}

// A report encodes with the MQTT report's lower-case names and reads back
// whole.
func TestReportJSONNames(t *testing.T) {
	want := fullReport()
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"id":`, `"playbook":`, `"state":`, `"occurred_at":`, `"impact_detail":`, `"hall":{"id":"hall-7","name":`,
		`"type":{"zh":`, `"steps":[{"id":`, `"escalation":{"level":`, `"created_at":`, `"trigger_at":`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("report JSON lacks %s: %s", key, b)
		}
	}
	for _, old := range []string{`"ID"`, `"Playbook"`, `"State"`, `"OccurredAt"`, `"Hall"`, `"ZH"`} {
		if strings.Contains(string(b), old) {
			t.Errorf("report JSON has the Go name %s: %s", old, b)
		}
	}
	var got engine.Report
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("report read back as\n%+v\nwant\n%+v", got, want)
	}
}
