package arc

import (
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/engine"
)

var testInputs = []Input{
	{ID: "panic-teller-1", Kind: "panic"},     // zone 001
	{ID: "panic-vault", Kind: "panic"},        // zone 002
	{ID: "smoke-hall", Kind: "smoke"},         // zone 003
	{ID: "callpoint-exit", Kind: "callpoint"}, // zone 004
	{ID: "box-tamper", Kind: "tamper"},        // zone 005
}

// TestEveryMappedEvent is the README's mapping table, case by case: the
// Contact ID (or SIA text) each incident event and condition gives.
func TestEveryMappedEvent(t *testing.T) {
	at := time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC)
	rep := func(pb, variant string, event engine.Event, source string, drill bool) engine.Report {
		return engine.Report{ID: "inc-1.v1", Incident: "inc-1", Playbook: pb, Variant: variant, Event: event, Source: source, Drill: drill, Created: at}
	}
	cond := func(class engine.Class, kind, input string, active bool) engine.Condition {
		return engine.Condition{Class: class, Kind: kind, Input: input, Active: active, Time: at}
	}
	m := &Mapping{Inputs: testInputs}
	for _, tc := range []struct {
		name string
		rep  *engine.Report
		cond *engine.Condition
		want string // Contact ID data after the account, "" for not sent
	}{
		{name: "robbery armed: silent hold-up §4.3(a)", rep: ptr(rep("robbery", "armed", engine.EventRaised, "panic-teller-1", false)), want: "1122 01 001"},
		{name: "robbery explosive §4.3(b)", rep: ptr(rep("robbery", "explosive", engine.EventRaised, "panic-vault", false)), want: "1122 01 002"},
		{name: "robbery resolved by the center", rep: ptr(rep("robbery", "armed", engine.EventResolved, "panic-teller-1", false)), want: "3122 01 001"},
		{name: "robbery false alarm closes it", rep: ptr(rep("robbery", "armed", engine.EventFalseAlarm, "panic-teller-1", false)), want: "3122 01 001"},
		{name: "robbery acknowledged: not an ARC event", rep: ptr(rep("robbery", "armed", engine.EventAcknowledged, "panic-teller-1", false)), want: ""},
		{name: "robbery escalation: not an ARC event", rep: ptr(rep("robbery", "armed", engine.EventEscalation, "panic-teller-1", false)), want: ""},
		{name: "duress", rep: ptr(rep("duress", "", engine.EventRaised, "console", false)), want: "1121 01 000"},
		{name: "fire from smoke", rep: ptr(rep("fire", "", engine.EventRaised, "smoke-hall", false)), want: "1111 01 003"},
		{name: "fire from call point", rep: ptr(rep("fire", "", engine.EventRaised, "callpoint-exit", false)), want: "1115 01 004"},
		{name: "fire raised by staff", rep: ptr(rep("fire", "", engine.EventRaised, "Chen Jing", false)), want: "1110 01 000"},
		{name: "fire resolved", rep: ptr(rep("fire", "", engine.EventResolved, "smoke-hall", false)), want: "3111 01 003"},
		{name: "robbery drill: manual test, never a hold-up", rep: ptr(rep("robbery", "armed", engine.EventRaised, "panic-teller-1", true)), want: "1601 01 001"},
		{name: "drill ends", rep: ptr(rep("fire", "", engine.EventResolved, "callpoint-exit", true)), want: "3601 01 004"},
		{name: "surge: no Contact ID, not sent by default", rep: ptr(rep("surge", "", engine.EventRaised, "", false)), want: ""},
		{name: "smoke pre-alarm: fire supervisory", cond: ptr(cond(engine.ClassSupervisory, "pre_alarm", "smoke-hall", true)), want: "1200 01 003"},
		{name: "pre-alarm cleared", cond: ptr(cond(engine.ClassSupervisory, "pre_alarm", "smoke-hall", false)), want: "3200 01 003"},
		{name: "box tamper", cond: ptr(cond(engine.ClassTamper, "tamper", "box-tamper", true)), want: "1137 01 005"},
		{name: "NC loop opened: sensor tamper", cond: ptr(cond(engine.ClassTamper, "loop_open", "panic-vault", true)), want: "1144 01 002"},
		{name: "stuck button: sensor trouble", cond: ptr(cond(engine.ClassTrouble, "stuck", "panic-teller-1", true)), want: "1380 01 001"},
		{name: "lost edges: sensor trouble", cond: ptr(cond(engine.ClassTrouble, "lost_edges", "panic-teller-1", true)), want: "1380 01 001"},
		{name: "line lost", cond: ptr(cond(engine.ClassTrouble, "line_lost", "smoke-hall", true)), want: "1330 01 003"},
		{name: "AC loss", cond: ptr(cond(engine.ClassTrouble, "ac_loss", "", true)), want: "1301 01 000"},
		{name: "output failed", cond: ptr(cond(engine.ClassTrouble, "output_failed", "", true)), want: "1320 01 000"},
		{name: "journal degraded", cond: ptr(cond(engine.ClassTrouble, "journal_degraded", "", true)), want: "1300 01 000"},
		{name: "DC-09 queue cannot store", cond: ptr(cond(engine.ClassTrouble, KindARCQueue, "", true)), want: "1300 01 000"},
		{name: "journal back", cond: ptr(cond(engine.ClassTrouble, "journal_degraded", "", false)), want: "3300 01 000"},
		{name: "MQTT path failed: communication trouble", cond: ptr(cond(engine.ClassTrouble, KindMQTTPathFailed, "", true)), want: "1350 01 000"},
		{name: "a DC-09 path failed: communication trouble on the other", cond: ptr(cond(engine.ClassTrouble, KindARCPathFailed+":primary", "", true)), want: "1350 01 000"},
		{name: "walk test starts", cond: ptr(cond(engine.ClassSupervisory, "walk_test", "", true)), want: "1607 01 000"},
		{name: "walk test ends", cond: ptr(cond(engine.ClassSupervisory, "walk_test", "", false)), want: "3607 01 000"},
		{name: "review overdue: not an ARC event", cond: ptr(cond(engine.ClassSupervisory, "review_overdue", "", true)), want: ""},
	} {
		var ev Event
		var ok bool
		if tc.rep != nil {
			ev, ok = m.Report(*tc.rep)
		} else {
			ev, ok = m.Condition(*tc.cond)
		}
		if tc.want == "" {
			if ok {
				t.Errorf("%s: sent %q, want nothing", tc.name, ev.Data("1234"))
			}
			continue
		}
		if !ok || ev.Format != IDContactID || ev.Data("1234") != "#1234|"+tc.want {
			t.Errorf("%s: got %v %q, want #1234|%s", tc.name, ok, ev.Data("1234"), tc.want)
		}
		if ev.ID == "" {
			t.Errorf("%s: event has no id", tc.name)
		}
	}
	if ev := Test(601, at); ev.Data("1234") != "#1234|1601 01 000" {
		t.Errorf("manual test: %q", ev.Data("1234"))
	}
	if ev := Test(602, at); ev.Data("1234") != "#1234|1602 01 000" {
		t.Errorf("periodic test: %q", ev.Data("1234"))
	}
}

// TestPlaybookCodesOverride: the per-playbook table in arc.codes replaces
// a default or maps a playbook that has none.
func TestPlaybookCodesOverride(t *testing.T) {
	m := &Mapping{Inputs: testInputs, Codes: map[string]int{"robbery/gas": 123, "besieged": 120}}
	ev, ok := m.Report(engine.Report{ID: "a.v1", Playbook: "robbery", Variant: "gas", Event: engine.EventRaised, Source: "panic-vault"})
	if !ok || ev.Data("1") != "#1|1123 01 002" {
		t.Errorf("robbery/gas: %v %q", ok, ev.Data("1"))
	}
	ev, ok = m.Report(engine.Report{ID: "b.v1", Playbook: "robbery", Variant: "armed", Event: engine.EventRaised, Source: "panic-vault"})
	if !ok || ev.Data("1") != "#1|1122 01 002" {
		t.Errorf("robbery/armed keeps the default: %v %q", ok, ev.Data("1"))
	}
	ev, ok = m.Report(engine.Report{ID: "c.v1", Playbook: "besieged", Event: engine.EventRaised})
	if !ok || ev.Data("1") != "#1|1120 01 000" {
		t.Errorf("besieged: %v %q", ok, ev.Data("1"))
	}
}

// TestUnmappedPlaybooksAsSIAText: with unmapped: sia_text, a playbook
// without a Contact ID goes as a SIA DC-03 event with its name as text.
func TestUnmappedPlaybooksAsSIAText(t *testing.T) {
	m := &Mapping{Inputs: testInputs, Unmapped: UnmappedSIAText}
	ev, ok := m.Report(engine.Report{ID: "s.v1", Playbook: "surge", Event: engine.EventRaised})
	if !ok || ev.Format != IDSIA || ev.Data("1234") != "#1234|Nri1/UA000|Asurge raised" {
		t.Errorf("surge raised: %v %s %q", ok, ev.Format, ev.Data("1234"))
	}
	ev, ok = m.Report(engine.Report{ID: "s.v2", Playbook: "illness", Event: engine.EventResolved})
	if !ok || ev.Data("1234") != "#1234|Nri1/UR000|Aillness resolved" {
		t.Errorf("illness resolved: %v %q", ok, ev.Data("1234"))
	}
}

func ptr[T any](v T) *T { return &v }
