package mqtt

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/engine"
)

func TestMarshalReportNeverOmits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*engine.Report)
		check func(t *testing.T, m map[string]any)
	}{
		{"unknown §3.3 fields", func(r *engine.Report) {
			r.Impact, r.Control, r.Trend, r.Other, r.Type.EN = "", "", "", "", ""
		}, func(t *testing.T, m map[string]any) {
			for _, k := range []string{"impact", "control", "trend", "other", "type"} {
				if m[k] != "unknown" {
					t.Errorf("%s = %v, want unknown", k, m[k])
				}
			}
		}},
		{"known fields kept", func(r *engine.Report) { r.Impact, r.Control = "none hurt", "under control" },
			func(t *testing.T, m map[string]any) {
				if m["impact"] != "none hurt" || m["control"] != "under control" {
					t.Errorf("impact %v control %v", m["impact"], m["control"])
				}
			}},
		{"a walk test's hold-up press is flagged test", func(r *engine.Report) { r.Test = true },
			func(t *testing.T, m map[string]any) {
				if m["test"] != true || m["drill"] != false {
					t.Errorf("test = %v drill = %v, want true and false", m["test"], m["drill"])
				}
			}},
		{"variants that joined are carried", func(r *engine.Report) { r.Variants = []string{"armed", "explosive"} },
			func(t *testing.T, m map[string]any) {
				if v, ok := m["variants"].([]any); !ok || len(v) != 2 || v[1] != "explosive" {
					t.Errorf("variants = %v, want [armed explosive]", m["variants"])
				}
			}},
		{"zero times are null", func(r *engine.Report) { r.OccurredAt = time.Time{} }, func(t *testing.T, m map[string]any) {
			if v, ok := m["occurred_at"]; !ok || v != nil {
				t.Errorf("occurred_at = %v (present %v), want null", v, ok)
			}
			if m["steps"].([]any)[0].(map[string]any)["at"] != nil {
				t.Error("step at of an undone step is not null")
			}
		}},
		{"times in UTC", func(r *engine.Report) { r.OccurredAt = t0.In(time.FixedZone("CST", 8*3600)) },
			func(t *testing.T, m map[string]any) {
				if m["occurred_at"] != "2026-03-01T07:45:12.123Z" {
					t.Errorf("occurred_at = %v", m["occurred_at"])
				}
			}},
		{"empty lists are []", func(r *engine.Report) { r.Measures, r.Steps, r.Inputs = nil, nil, nil },
			func(t *testing.T, m map[string]any) {
				for _, k := range []string{"measures", "steps", "inputs"} {
					if l, ok := m[k].([]any); !ok || len(l) != 0 {
						t.Errorf("%s = %#v, want []", k, m[k])
					}
				}
			}},
		{"escalation omitted when nil", nil, func(t *testing.T, m map[string]any) {
			if _, ok := m["escalation"]; ok {
				t.Error("escalation present")
			}
		}},
		{"escalation", func(r *engine.Report) {
			r.Escalation = &engine.EscalationInfo{Level: 2, Role: "general_manager", Name: "Li", Contact: "8001", After: 3 * time.Minute}
		}, func(t *testing.T, m map[string]any) {
			e := m["escalation"].(map[string]any)
			if e["level"] != 2.0 || e["role"] != "general_manager" || e["after_seconds"] != 180.0 || e["title"] != "" {
				t.Errorf("escalation = %v", e)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sampleReport("inc-1", 1)
			if tc.edit != nil {
				tc.edit(&r)
			}
			b, err := MarshalReport(r, t0)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			if m["redelivered"] != false || m["sent_at"] != "2026-03-01T07:45:12.123Z" {
				t.Errorf("redelivered %v sent_at %v", m["redelivered"], m["sent_at"])
			}
			tc.check(t, m)
		})
	}
}
