package test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/test/hallproc"
)

// report is the part of the report payload these tests read.
type report = hallproc.Report

// TestReadmeWalkthrough is the README's walk-through, as a user does it:
// make run (here: hallguard run -config configs/demo.yaml), hallguard watch
// in another terminal, hallguard sim press panic-teller-1, and curl on the
// metrics endpoint.
func TestReadmeWalkthrough(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml")
	root := "hallguard/demo-hall"
	sub := subscribe(t, d.mqtt, root+"/#")

	// status is retained online (birth message).
	sub.wait(t, 5*time.Second, func(m message) bool {
		return m.Topic == root+"/status" && string(m.Payload) == "online"
	})

	// hallguard watch, as the newcomer runs it.
	watch := exec.Command(hallguardBin(t), "watch", "-config", d.config, "-broker", "tcp://"+d.mqtt)
	var watchOut hallproc.Log
	watch.Stdout, watch.Stderr = &watchOut, &watchOut
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = watch.Process.Kill(); _ = watch.Wait() }()
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(watchOut.String(), "online") }, "watch to print status online", &watchOut)

	pressed := time.Now()
	d.sim("press", "panic-teller-1")
	m := sub.wait(t, 5*time.Second, func(m message) bool { return m.Topic == root+"/alerts/robbery" })
	latency := m.At.Sub(pressed)
	var r report
	if err := json.Unmarshal(m.Payload, &r); err != nil {
		t.Fatalf("report payload: %v\n%s", err, m.Payload)
	}
	t.Logf("press -> report received by subscriber: %s (including the hallguard sim process start)", latency)
	want := map[string][2]string{
		"playbook": {r.Playbook, "robbery"}, "type": {r.Type, "robbery"}, "variant": {r.Variant, "armed"},
		"section": {r.Section, "§4.3(a)"}, "event": {r.Event, "raised"}, "state": {r.State, "active"},
		"origin": {r.Origin, "button"}, "source": {r.Source, "panic-teller-1"},
		"hall.id": {r.Hall.ID, "demo-hall"}, "hall.name": {r.Hall.Name, "客户服务中心第一营业厅 (Demo Service Hall No. 1)"},
		"hall.location": {r.Hall.Location, "1 Demo Road, Example City"},
		"impact":        {r.Impact, "unknown"}, "control": {r.Control, "unknown"}, "trend": {r.Trend, "unknown"},
	}
	for field, v := range want {
		if v[0] != v[1] {
			t.Errorf("report %s = %q, want %q", field, v[0], v[1])
		}
	}
	if !r.Silent || r.Drill || r.Version != 1 || r.ID != r.Incident+".v1" || r.OccurredAt == "" || r.SentAt == "" {
		t.Errorf("report silent %v drill %v version %d id %q occurred %q sent %q", r.Silent, r.Drill, r.Version, r.ID, r.OccurredAt, r.SentAt)
	}
	if len(r.Steps) != 3 || r.Steps[0].Section != "§4.3(a)1" || r.Steps[0].ZH == "" {
		t.Errorf("steps = %+v, want the three §4.3(a) steps", r.Steps)
	}
	policeLink := false
	for _, ms := range r.Measures {
		policeLink = policeLink || (ms.Kind == "output" && ms.Text == "police-link on")
		if strings.HasPrefix(ms.Text, "siren") || strings.HasPrefix(ms.Text, "strobe") {
			t.Errorf("robbery drove an audible/visible output: %+v", ms)
		}
	}
	if !policeLink {
		t.Errorf("measures %+v lack the silent police link", r.Measures)
	}
	// The retained incident topic holds the same report.
	sub.wait(t, 5*time.Second, func(m message) bool {
		return m.Topic == root+"/incidents/"+r.Incident && bytes.Contains(m.Payload, []byte(r.ID))
	})

	// watch printed it readably.
	waitFor(t, 5*time.Second, func() bool {
		out := watchOut.String()
		return strings.Contains(out, "ROBBERY") && strings.Contains(out, "armed") && strings.Contains(out, "客户服务中心第一营业厅")
	}, "watch to print the robbery report", &watchOut)

	// The metrics endpoint counts it.
	waitFor(t, 5*time.Second, func() bool {
		v, ok := hallproc.Sample(d.metrics(), `hallguard_incidents_total{drill="false",origin="button",playbook="robbery"}`)
		return ok && v == "1"
	}, "hallguard_incidents_total for robbery to be 1", nil)
	text := d.metrics()
	if v, _ := hallproc.Sample(text, `hallguard_incidents_active{drill="false",playbook="robbery"}`); v != "1" {
		t.Errorf("hallguard_incidents_active robbery = %q, want 1", v)
	}
	if v, _ := hallproc.Sample(text, `hallguard_report_latency_seconds_count`); v != "1" {
		t.Errorf("latency histogram count = %q, want 1", v)
	}
	if v, _ := hallproc.Sample(text, `hallguard_output_active{output="siren"}`); v != "0" {
		t.Errorf("siren = %q during robbery, want 0", v)
	}

	// A second button joins the same incident with one update that carries
	// it; the same buttons pressed again send nothing new.
	d.sim("release", "panic-teller-1")
	d.sim("pulse", "panic-teller-2", "50ms")
	d.sim("pulse", "panic-teller-2", "50ms")
	d.sim("pulse", "panic-teller-1", "50ms")
	time.Sleep(300 * time.Millisecond)
	var alerts []report
	for _, m := range sub.all() {
		if m.Topic == root+"/alerts/robbery" {
			var r report
			if err := json.Unmarshal(m.Payload, &r); err != nil {
				t.Fatal(err)
			}
			alerts = append(alerts, r)
		}
	}
	if len(alerts) != 2 || alerts[1].Event != "update" || alerts[1].Incident != alerts[0].Incident ||
		len(alerts[1].Inputs) != 2 || alerts[1].Inputs[1] != "panic-teller-2" {
		t.Errorf("robbery alerts after more presses = %+v, want the raise and one update carrying panic-teller-2 (one incident, latched)", alerts)
	}
}

func waitFor(t *testing.T, d time.Duration, ok func() bool, what string, out *hallproc.Log) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			extra := ""
			if out != nil {
				extra = "\noutput:\n" + out.String()
			}
			t.Fatalf("timed out after %s waiting for %s%s", d, what, extra)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
