package test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hallguard/hallguard/test/hallproc"
)

// TestReportSeqContinuesAfterRestart: seq is daemon-wide and increasing,
// across restarts too, so a receiver can order and gap-check by it.
func TestReportSeqContinuesAfterRestart(t *testing.T) {
	root := "hallguard/demo-hall"
	d := startDaemon(t, "configs/demo.yaml")
	sub := subscribe(t, d.mqtt, root+"/alerts/#")
	d.sim("press", "callpoint-exit")
	m := sub.wait(t, 5*time.Second, func(message) bool { return true })
	var first report
	_ = json.Unmarshal(m.Payload, &first)
	d.stop()

	d2 := startDaemonOn(t, "configs/demo.yaml", d.stateDir)
	sub2 := subscribe(t, d2.mqtt, root+"/alerts/#")
	d2.sim("press", "panic-teller-1")
	second := sub2.reportOn(t, 5*time.Second, root+"/alerts/robbery")
	if second.Seq <= first.Seq {
		t.Fatalf("seq after restart = %d, want more than %d", second.Seq, first.Seq)
	}
}

// TestOpenIncidentsSurviveAKill: a fire and a robbery open when the daemon
// is SIGKILLed are open again after the restart: the siren sounds again,
// the center is told, and it can still resolve them.
func TestOpenIncidentsSurviveAKill(t *testing.T) {
	root := "hallguard/demo-hall"
	d := startDaemon(t, "configs/demo.yaml")
	sub := subscribe(t, d.mqtt, root+"/alerts/#")
	d.sim("press", "callpoint-exit")
	d.sim("press", "panic-teller-1")
	fire := sub.reportOn(t, 5*time.Second, root+"/alerts/fire")
	robbery := sub.reportOn(t, 5*time.Second, root+"/alerts/robbery")
	if err := d.p.Cmd.Process.Kill(); err != nil { // SIGKILL: no clean shutdown
		t.Fatal(err)
	}
	<-d.p.Done()

	d2 := startDaemonOn(t, "configs/demo.yaml", d.stateDir)
	sub2 := subscribe(t, d2.mqtt, root+"/#")
	for _, id := range []string{fire.Incident, robbery.Incident} {
		id := id
		sub2.wait(t, 10*time.Second, func(m message) bool {
			var r report
			return json.Unmarshal(m.Payload, &r) == nil && r.Incident == id && r.Event == "update" && r.State == "active" &&
				len(r.Measures) > 0 && r.Measures[len(r.Measures)-1].Text == "hallguard restarted: incident restored from the journal, outputs driven again"
		})
	}
	text := d2.metrics()
	for series, want := range map[string]string{
		`hallguard_output_active{output="siren"}`:                                     "1",
		`hallguard_output_active{output="police-link"}`:                               "1",
		`hallguard_incidents_active{drill="false",playbook="robbery"}`:                "1",
		`hallguard_incidents_active{drill="false",playbook="fire"}`:                   "1",
		`hallguard_incidents_total{drill="false",origin="button",playbook="robbery"}`: "",
	} {
		if v, _ := hallproc.Sample(text, series); v != want {
			t.Errorf("after the restart %s = %q, want %q", series, v, want)
		}
	}
	// The center resolves the restored robbery: it is known, not "unknown_incident".
	out, err := d2.hg("cmd", "resolve", "-config", d2.config, "-broker", "tcp://"+d2.mqtt, "-incident", robbery.Incident, "-by", "center-op-7")
	if err != nil {
		t.Fatalf("resolve of a restored robbery: %v\n%s", err, out)
	}
}
