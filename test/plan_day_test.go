package test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/mqtt"

	"github.com/hallguard/hallguard/test/hallproc"
)

// planReports decodes the reports on one topic.
func planReports(t *testing.T, sub *subscriber, topic string) []mqtt.ReportPayload {
	t.Helper()
	var out []mqtt.ReportPayload
	for _, m := range sub.all() {
		if m.Topic != topic {
			continue
		}
		var r mqtt.ReportPayload
		if err := json.Unmarshal(m.Payload, &r); err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		out = append(out, r)
	}
	return out
}

func waitReport(t *testing.T, sub *subscriber, topic string, event engine.Event) mqtt.ReportPayload {
	t.Helper()
	m := sub.wait(t, 10*time.Second, func(m message) bool {
		var r mqtt.ReportPayload
		return m.Topic == topic && json.Unmarshal(m.Payload, &r) == nil && r.Event == event
	})
	var r mqtt.ReportPayload
	_ = json.Unmarshal(m.Payload, &r)
	return r
}

// hgReply runs `hallguard args` against d's config and broker and returns
// its reply, failing t unless the command succeeds with result ok.
func hgReply(t *testing.T, d *daemonProc, args ...string) reply {
	t.Helper()
	out, err := d.hg(append(args, "-config", d.config, "-broker", "tcp://"+d.mqtt)...)
	var r reply
	if err != nil || json.Unmarshal([]byte(strings.TrimSpace(out)), &r) != nil || r.Result != "ok" {
		t.Fatalf("%v: %v %s", args, err, out)
	}
	return r
}

func journalKind(t *testing.T, d *daemonProc, kind string) []map[string]json.RawMessage {
	t.Helper()
	resp, err := http.Get("http://" + d.local + "/api/journal/export?format=jsonl&kind=" + kind)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []map[string]json.RawMessage
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("journal export: %v: %s", err, sc.Bytes())
		}
		out = append(out, m)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return out
}

// businessSystem is the local HTTP server the §4.2 probe checks; the test
// stops and starts it on the same address.
type businessSystem struct {
	addr string
	srv  *http.Server
}

func (b *businessSystem) start(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may linger a moment after a stop
		if ln, err = net.Listen("tcp", b.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	go b.srv.Serve(ln)
}

func (b *businessSystem) stop() {
	if b.srv != nil {
		b.srv.Close()
		b.srv = nil
	}
}

// TestPlanDay is one scripted day in the simulated hall: a morning surge
// acknowledged, worked and resolved; a false panic alarm closed as such; a
// fire drill at noon with its record; a business-system outage opened and
// closed by the probe; the surge reviewed. Then every incident renders as
// a report, the journal verifies, and drill history survives a restart.
func TestPlanDay(t *testing.T) {
	biz := &businessSystem{addr: freePort(t)}
	biz.start(t)
	defer biz.stop()
	config := demoConfigCopy(t, func(s string) string {
		for _, r := range [][2]string{{"surge_length: 30", "surge_length: 3"}, {"clear_length: 20", "clear_length: 1"},
			{"surge_rate: 6 ", "surge_rate: 0 "}, {"clear_rate: 4", "clear_rate: 0"}, {"surge_after: 2m", "surge_after: 1s"}, {"clear_after: 5m", "clear_after: 1s"}} {
			if !strings.Contains(s, r[0]) {
				t.Fatalf("demo.yaml has no %q", r[0])
			}
			s = strings.Replace(s, r[0], r[1], 1)
		}
		return s + "\nprobe: {url: \"http://" + biz.addr + "/health\", interval: 1s, timeout: 500ms, failures: 2}\n"
	})
	d := startDaemon(t, config)
	root := "hallguard/demo-hall"
	sub := subscribe(t, d.mqtt, root+"/#")

	// Morning: a surge of customers (§4.1).
	for i := 0; i < 3; i++ {
		d.sim("pulse", "beam-entrance")
	}
	surge := waitReport(t, sub, root+"/alerts/surge", engine.EventRaised)
	if surge.Origin != "sensor" || surge.Source != "queue" || surge.Trend != "rising" || surge.Drill ||
		!strings.HasPrefix(surge.Other, "queue length 3,") || surge.Section != "§4.1" || surge.Type != "surge of customers (business volume)" || surge.Impact != "unknown" {
		t.Errorf("surge raised %+v", surge)
	}
	hgReply(t, d, "cmd", "ack", "-incident", surge.Incident, "-by", "op-7")
	hgReply(t, d, "cmd", "step", "-incident", surge.Incident, "-step", "open_counters", "-by", "Chen Jing")
	hgReply(t, d, "cmd", "report", "-incident", surge.Incident, "-by", "Chen Jing", "-control", "two more counters open")
	for i := 0; i < 3; i++ {
		d.sim("pulse", "next-customer")
	}
	easing := sub.wait(t, 10*time.Second, func(m message) bool {
		var r mqtt.ReportPayload
		return m.Topic == root+"/alerts/surge" && json.Unmarshal(m.Payload, &r) == nil && r.Trend == "easing"
	})
	var ez mqtt.ReportPayload
	_ = json.Unmarshal(easing.Payload, &ez)
	if ez.State != "acknowledged" || ez.Control != "two more counters open" || !ez.Steps[0].Done || ez.Steps[0].By != "Chen Jing" {
		t.Errorf("surge easing %+v", ez)
	}
	hgReply(t, d, "cmd", "resolve", "-incident", surge.Incident, "-by", "Chen Jing")
	sres := waitReport(t, sub, root+"/alerts/surge", engine.EventResolved)
	if tl := sres.Timeline; tl == nil || tl.AcknowledgedBy != "op-7" || tl.ResolvedBy != "Chen Jing" || tl.ActivateToAck == nil ||
		tl.DeliveredAt == nil || !tl.Steps[0].Done || tl.Steps[1].Done {
		t.Errorf("surge timeline %+v", sres.Timeline)
	}

	// A false panic alarm: a cleaner knocked the button.
	d.sim("press", "panic-teller-2")
	raised := waitReport(t, sub, root+"/alerts/robbery", engine.EventRaised)
	d.sim("release", "panic-teller-2")
	if raised.Timeline != nil || raised.Drill || raised.Variant != "armed" || raised.Source != "panic-teller-2" {
		t.Errorf("initial report: %+v", raised)
	}
	// The initial report's PUBACK is what the timeline records; it is in
	// once the retained copy has come back through the broker.
	sub.wait(t, 10*time.Second, func(m message) bool { return m.Topic == root+"/incidents/"+raised.Incident })
	time.Sleep(200 * time.Millisecond)
	hgReply(t, d, "cmd", "false_alarm", "-incident", raised.Incident, "-by", "op-7", "-reason", "knocked by a cleaner")
	fa := waitReport(t, sub, root+"/alerts/robbery", engine.EventFalseAlarm)
	if fa.Incident != raised.Incident || fa.State != "resolved" || fa.Timeline == nil {
		t.Fatalf("false alarm report: %+v", fa)
	}
	tl := fa.Timeline
	if tl.Resolution != "false_alarm" || tl.Reason != "knocked by a cleaner" || tl.ResolvedBy != "op-7" ||
		tl.DetectedAt == nil || tl.ActivatedAt == nil || tl.FirstReportAt == nil || tl.ResolvedAt == nil ||
		tl.AcknowledgedAt != nil || tl.ActivateToResolve == nil || *tl.ActivateToResolve <= 0 {
		t.Errorf("timeline %+v", tl)
	}
	if tl.DeliveredAt == nil || tl.DeliveredAt.Before(*tl.FirstReportAt) {
		t.Errorf("delivered_at %v, first report %v", tl.DeliveredAt, tl.FirstReportAt)
	}
	if len(tl.Steps) != len(fa.Steps) || tl.Steps[0].Done {
		t.Errorf("timeline steps %+v", tl.Steps)
	}
	if v, _ := hallproc.Sample(d.metrics(), `hallguard_false_alarms_total{input="panic-teller-2"}`); v != "1" {
		t.Errorf("false alarms of panic-teller-2 = %q", v)
	}
	if v, _ := hallproc.Sample(d.metrics(), `hallguard_false_alarms_total{input="panic-teller-1"}`); v != "0" {
		t.Errorf("false alarms of panic-teller-1 = %q", v)
	}

	// Noon: a fire drill (§1.3).
	r := hgReply(t, d, "drill", "start", "fire", "--participants", "Chen Jing, Liu Yang", "--by", "Chen Jing")
	drill := r.Incident
	dr := waitReport(t, sub, root+"/drills/alerts/fire", engine.EventRaised)
	if dr.Incident != drill || !dr.Drill || dr.Origin != "center" || dr.Source != "Chen Jing" ||
		!strings.Contains(dr.Other, "Chen Jing, Liu Yang") {
		t.Errorf("drill raised report %+v", dr)
	}
	waitFor(t, 10*time.Second, func() bool {
		v, _ := hallproc.Sample(d.metrics(), `hallguard_output_active{output="siren"}`)
		return v == "1"
	}, "the drill's siren", d.logs)
	hgReply(t, d, "cmd", "ack", "-incident", drill, "-by", "op-7")
	hgReply(t, d, "cmd", "step", "-incident", drill, "-step", "evacuate", "-by", "Liu Yang")
	hgReply(t, d, "drill", "stop", "--by", "Chen Jing")
	end := waitReport(t, sub, root+"/drills/alerts/fire", engine.EventResolved)
	if !end.Drill || end.Timeline == nil || end.Timeline.AcknowledgedBy != "op-7" {
		t.Errorf("drill end report %+v", end)
	}
	rec := sub.wait(t, 10*time.Second, func(m message) bool { return m.Topic == root+"/drills/"+drill })
	var dk engine.DrillRecord
	if err := json.Unmarshal(rec.Payload, &dk); err != nil {
		t.Fatal(err)
	}
	if dk.ID != drill || !dk.Drill || dk.Hall != "demo-hall" || dk.Playbook != "fire" || dk.Section != "§4.4" ||
		dk.Outcome != "completed" || dk.StartedBy != "Chen Jing" || dk.EndedBy != "Chen Jing" ||
		!slices.Equal(dk.Participants, []string{"Chen Jing", "Liu Yang"}) || dk.AcknowledgedBy != "op-7" ||
		dk.AckSeconds == nil || !slices.Equal(dk.Completed, []string{"evacuate"}) ||
		!slices.Equal(dk.Missed, []string{"fight_fire", "call_119", "cut_power", "guard_key_places"}) ||
		len(dk.Comments) != 0 || dk.EndedAt.Before(dk.StartedAt) {
		t.Errorf("drill record %s", rec.Payload)
	}
	m := d.metrics()
	if v, _ := hallproc.Sample(m, `hallguard_output_active{output="power-cut"}`); v == "1" {
		t.Error("the power cut acted in a drill")
	}
	if strings.Contains(d.logs.String(), `output=power-cut active=true`) {
		t.Error("the power cut was driven in a drill")
	}
	if v, _ := hallproc.Sample(m, `hallguard_drill_last_timestamp_seconds{playbook="fire"}`); v == "0" || v == "" {
		t.Errorf("last fire drill metric %q", v)
	}
	for _, msg := range sub.all() {
		if msg.Topic == root+"/alerts/fire" {
			t.Errorf("a drill report on the live topic: %s", msg.Payload)
		}
	}
	for _, rp := range planReports(t, sub, root+"/drills/alerts/fire") {
		if !rp.Drill {
			t.Errorf("drill report %s without drill: true", rp.ID)
		}
	}
	hgReply(t, d, "drill", "evaluate", drill, "--comment", "east door slow to clear", "--by", "Wang Lei")
	ev := sub.wait(t, 10*time.Second, func(m message) bool {
		var r engine.DrillRecord
		return m.Topic == root+"/drills/"+drill && json.Unmarshal(m.Payload, &r) == nil && len(r.Comments) == 1
	})
	_ = json.Unmarshal(ev.Payload, &dk)
	if c := dk.Comments[0]; c.By != "Wang Lei" || c.Text != "east door slow to clear" || dk.Outcome != "completed" {
		t.Errorf("evaluated record %s", ev.Payload)
	}
	var recs []map[string]json.RawMessage
	waitFor(t, 10*time.Second, func() bool { recs = journalKind(t, d, "drill"); return len(recs) == 2 }, "2 drill journal records", d.logs)
	if string(recs[0]["incident"]) != `"`+drill+`"` || string(recs[0]["drill"]) != "true" {
		t.Errorf("journal drill record %v", recs[0])
	}

	// Afternoon: the business system goes down (§4.2), found by the probe.
	biz.stop()
	down := waitReport(t, sub, root+"/alerts/system_failure", engine.EventRaised)
	if down.Origin != "probe" || down.Source != "probe" || down.Drill || down.Section != "§4.2" ||
		!strings.Contains(down.Other, "business system check http://"+biz.addr+"/health failed 2 times in a row: ") ||
		down.Impact != "business system unavailable: http://"+biz.addr+"/health" {
		t.Errorf("outage raised %+v", down)
	}
	out, err := d.hg("cmd", "step", "-incident", down.Incident, "-step", "take_phone_numbers", "-records", "138 0013 8000", "-by", "Chen Jing",
		"-config", d.config, "-broker", "tcp://"+d.mqtt)
	if err == nil || !strings.Contains(out, "never the phone numbers") {
		t.Errorf("a phone number was accepted: %s %v", out, err)
	}
	hgReply(t, d, "cmd", "step", "-incident", down.Incident, "-step", "take_phone_numbers", "-records", "4", "-by", "Chen Jing")
	biz.start(t)
	up := waitReport(t, sub, root+"/alerts/system_failure", engine.EventResolved)
	if up.Timeline == nil || up.Timeline.ResolvedBy != "probe" || !strings.HasPrefix(up.Timeline.Reason, "business system check http://"+biz.addr+"/health succeeds again; outage ") ||
		!strings.HasPrefix(up.Control, "service restored after an outage of ") || !up.Timeline.Steps[2].Done {
		t.Errorf("outage resolved %+v %+v", up, up.Timeline)
	}
	for _, ms := range up.Measures {
		if strings.Contains(ms.Text, "0013") {
			t.Errorf("a phone number in the report: %+v", ms)
		}
	}

	// The surge's review (§3.4) for the Safety Supervision Department.
	r = hgReply(t, d, "review", surge.Incident, "--by", "Wang Lei", "--cause", "pension day", "--course", "queue of 3 by 09:00",
		"--handling", "two more counters opened", "--problems", "no early warning",
		"--actions", "Li Na:2026-12-15:queue display at the door; Zhao Min:2027-01-10:staff rota for pension days")
	rv := sub.wait(t, 10*time.Second, func(m message) bool { return m.Topic == root+"/reviews/"+surge.Incident })
	var review engine.Review
	if err := json.Unmarshal(rv.Payload, &review); err != nil {
		t.Fatal(err)
	}
	if review.Incident != surge.Incident || review.Playbook != "surge" || review.Cause != "pension day" || review.By != "Wang Lei" ||
		review.Resolution != "resolved" || len(review.Actions) != 2 || review.Actions[1] != (engine.ReviewAction{Owner: "Zhao Min", Due: "2027-01-10", Text: "staff rota for pension days"}) {
		t.Errorf("review %s", rv.Payload)
	}
	reviewed := waitReport(t, sub, root+"/alerts/surge", engine.EventReviewed)
	if reviewed.State != "reviewed" || reviewed.Review == nil || reviewed.Review.Problems != "no early warning" || reviewed.Timeline == nil {
		t.Errorf("reviewed report %+v", reviewed)
	}
	if _, err := d.hg("review", surge.Incident, "--by", "x", "--cause", "a", "--course", "b", "--handling", "c", "--problems", "d",
		"-config", d.config, "-broker", "tcp://"+d.mqtt); err == nil {
		t.Error("an incident was reviewed twice")
	}
	if v, ok := hallproc.Sample(d.metrics(), "hallguard_incidents_unreviewed"); !ok || v != "0" {
		t.Errorf("unreviewed = %q", v)
	}

	// Every incident renders as a report for the archive (§3.5).
	for _, inc := range []string{surge.Incident, raised.Incident, drill, down.Incident} {
		md, err := d.hg("report", inc, "--lang", "both", "-config", d.config, "--local", d.local, "-file", filepath.Join(d.stateDir, "hallguard.db"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"# ", inc, "## 1. 营业厅名称及地点 Hall and location (§3.3 1)", "## 7. 其他需要报告的事项 Other (§3.3 7)",
			"## 时间线 Timeline", "## 已发报告 Reports sent", "## 事后分析 Post-incident review (§3.4)"} {
			if !strings.Contains(md, want) {
				t.Errorf("report of %s has no %q:\n%s", inc, want, md)
			}
		}
		js, err := d.hg("report", inc, "--format", "json", "-config", d.config, "--local", d.local, "-file", filepath.Join(d.stateDir, "hallguard.db"))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Incident string             `json:"incident"`
			Report   mqtt.ReportPayload `json:"report"`
			Reports  []struct{ Event string }
			Review   *engine.Review `json:"review"`
		}
		if err := json.Unmarshal([]byte(js), &doc); err != nil || doc.Incident != inc || doc.Report.Timeline == nil || doc.Reports[0].Event != "raised" {
			t.Errorf("json report of %s: %v %s", inc, err, js)
		}
		if (inc == surge.Incident) != (doc.Review != nil) {
			t.Errorf("json report of %s: review %v", inc, doc.Review)
		}
	}
	md, _ := d.hg("report", surge.Incident, "--lang", "en", "-config", d.config, "--local", d.local, "-file", filepath.Join(d.stateDir, "hallguard.db"))
	for _, want := range []string{"- **Cause**: pension day", "| queue display at the door | Li Na | 2026-12-15 |", "| Acknowledged |", "two more counters open"} {
		if !strings.Contains(md, want) {
			t.Errorf("surge report has no %q:\n%s", want, md)
		}
	}

	// Evening: the daemon restarts; drill history survives, the journal
	// verifies.
	last, _ := hallproc.Sample(m, `hallguard_drill_last_timestamp_seconds{playbook="fire"}`)
	d.stop()
	if out, err := d.hg("journal", "verify", "-config", d.config, "-file", filepath.Join(d.stateDir, "hallguard.db")); err != nil {
		t.Errorf("journal verify: %v %s", err, out)
	}
	d2 := startDaemonOn(t, d.config, d.stateDir)
	if v, _ := hallproc.Sample(d2.metrics(), `hallguard_drill_last_timestamp_seconds{playbook="fire"}`); v != last {
		t.Errorf("after restart: last fire drill %q, want %q", v, last)
	}
	sub2 := subscribe(t, d2.mqtt, root+"/#")
	out, err = d2.hg("drill", "evaluate", drill, "--comment", "second look", "--by", "Zhao Min", "-config", d2.config, "-broker", "tcp://"+d2.mqtt)
	if err != nil {
		t.Fatal(err, out)
	}
	ev2 := sub2.wait(t, 10*time.Second, func(m message) bool { return m.Topic == root+"/drills/"+drill })
	_ = json.Unmarshal(ev2.Payload, &dk)
	if len(dk.Comments) != 2 || dk.Comments[1].Text != "second look" {
		t.Errorf("evaluation after restart %s", ev2.Payload)
	}
	out, err = d2.hg("review", raised.Incident, "--by", "x", "--cause", "a", "--course", "b", "--handling", "c", "--problems", "d",
		"-config", d2.config, "-broker", "tcp://"+d2.mqtt)
	if err != nil || !strings.Contains(out, `"result":"ok"`) {
		t.Errorf("review of the earlier run's false alarm: %v %s", err, out)
	}
}

// A walk test proves each input it names, pressed once, and raises no
// alarm; a hold-up press reaches the center as a test on its alerts topic.
// The center's test command raises an input's playbook as a drill from it.
func TestPlanWalkTestAndInputTest(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml")
	root := "hallguard/demo-hall"
	sub := subscribe(t, d.mqtt, root+"/#")
	cli := func(args ...string) reply {
		t.Helper()
		return hgReply(t, d, append(args, "--by", "installer")...)
	}
	walk := cli("drill", "walk_start", "--inputs", "panic-teller-1, callpoint-exit, smoke-hall").Incident
	sub.wait(t, 10*time.Second, func(m message) bool {
		return m.Topic == root+"/conditions" && strings.Contains(string(m.Payload), `"kind":"walk_test"`)
	})
	d.sim("press", "panic-teller-1")
	d.sim("release", "panic-teller-1")
	d.sim("press", "callpoint-exit")
	d.sim("release", "callpoint-exit")
	waitFor(t, 10*time.Second, func() bool {
		v, _ := hallproc.Sample(d.metrics(), `hallguard_input_changes_total{input="callpoint-exit"}`)
		return v == "2"
	}, "the call point's presses", d.logs)
	if cli("drill", "walk_stop").Incident != walk {
		t.Fatal("walk_stop answered another walk test")
	}
	m := sub.wait(t, 10*time.Second, func(m message) bool { return m.Topic == root+"/drills/"+walk })
	var w engine.WalkRecord
	if err := json.Unmarshal(m.Payload, &w); err != nil {
		t.Fatal(err)
	}
	if w.Kind != "walk_test" || w.StartedBy != "installer" || !slices.Equal(w.Tested, []string{"panic-teller-1", "callpoint-exit"}) ||
		slices.Contains(w.Untested, "panic-teller-1") || !slices.Contains(w.Untested, "smoke-hall") {
		t.Errorf("walk record %s", m.Payload)
	}
	sub.wait(t, 10*time.Second, func(m message) bool {
		return m.Topic == root+"/alerts/robbery" && strings.Contains(string(m.Payload), `"event":"resolved"`)
	})
	tests := 0
	for _, msg := range sub.all() {
		if !strings.Contains(msg.Topic, "/alerts/") && !strings.Contains(msg.Topic, "/incidents/") {
			continue
		}
		var r struct {
			Incident string `json:"incident"`
			Test     bool   `json:"test"`
			Drill    bool   `json:"drill"`
		}
		if err := json.Unmarshal(msg.Payload, &r); err != nil || !r.Test || r.Drill || r.Incident != w.HoldUp ||
			msg.Topic != root+"/alerts/robbery" && msg.Topic != root+"/incidents/"+w.HoldUp {
			t.Errorf("the walk test raised %s: %s", msg.Topic, msg.Payload)
		}
		if msg.Topic == root+"/alerts/robbery" {
			tests++
		}
	}
	if tests != 2 { // the press, and the test incident's end
		t.Errorf("the center got %d test reports of the hold-up press, want 2", tests)
	}
	mt := d.metrics()
	if v, _ := hallproc.Sample(mt, `hallguard_input_walk_test_last_timestamp_seconds{input="callpoint-exit"}`); v == "0" || v == "" {
		t.Errorf("walk test metric of callpoint-exit %q", v)
	}
	if v, _ := hallproc.Sample(mt, `hallguard_input_walk_test_last_timestamp_seconds{input="smoke-hall"}`); v != "0" {
		t.Errorf("walk test metric of smoke-hall %q", v)
	}
	if v, _ := hallproc.Sample(mt, `hallguard_output_active{output="siren"}`); v == "1" {
		t.Error("the walk test sounded the siren")
	}

	inc := cli("drill", "test", "smoke-hall").Incident
	r := waitReport(t, sub, root+"/drills/alerts/fire", engine.EventRaised)
	if r.Incident != inc || !r.Drill || r.Source != "smoke-hall" || !slices.Equal(r.Inputs, []string{"smoke-hall"}) {
		t.Errorf("test report %+v", r)
	}
	cli("drill", "stop")
	waitReport(t, sub, root+"/drills/alerts/fire", engine.EventResolved)
	if v, _ := hallproc.Sample(d.metrics(), `hallguard_output_active{output="power-cut"}`); v == "1" {
		t.Error("the power cut acted in a test")
	}
}

// A preserve_cctv step publishes the configured bookmark request with the
// incident's window, and the request is in the report's measures.
func TestPlanCCTVBookmark(t *testing.T) {
	config := demoConfigCopy(t, func(s string) string {
		return s + "\ncctv: {topic: cctv/bookmark, before: 5m, after: 30m, payload: '{\"ref\":\"{{.Incident}}\",\"step\":\"{{.Step}}\",\"from\":\"{{.From}}\",\"until\":\"{{.Until}}\"}'}\n"
	})
	d := startDaemon(t, config)
	root := "hallguard/demo-hall"
	sub := subscribe(t, d.mqtt, root+"/#")
	inc := hgReply(t, d, "cmd", "trigger", "-playbook", "illness", "-by", "Chen Jing").Incident
	raised := waitReport(t, sub, root+"/alerts/illness", engine.EventRaised)
	hgReply(t, d, "cmd", "step", "-incident", inc, "-step", "preserve_cctv", "-by", "Chen Jing")
	m := sub.wait(t, 10*time.Second, func(m message) bool { return m.Topic == root+"/cctv/bookmark" })
	var bm struct{ Ref, Step, From, Until string }
	if err := json.Unmarshal(m.Payload, &bm); err != nil {
		t.Fatalf("bookmark %s: %v", m.Payload, err)
	}
	from, err1 := time.Parse(time.RFC3339, bm.From)
	until, err2 := time.Parse(time.RFC3339, bm.Until)
	occurred := raised.OccurredAt.Truncate(time.Second)
	if bm.Ref != inc || bm.Step != "preserve_cctv" || err1 != nil || err2 != nil ||
		!from.Equal(occurred.Add(-5*time.Minute)) || until.Sub(occurred) < 30*time.Minute {
		t.Errorf("bookmark %s (occurred %s)", m.Payload, raised.OccurredAt)
	}
	step := waitReport(t, sub, root+"/alerts/illness", engine.EventStep)
	last := step.Measures[len(step.Measures)-1]
	if last.Section != "§4.7 4" || last.Text != "CCTV bookmark requested from "+bm.From+" to "+bm.Until || last.By != "hallguard" {
		t.Errorf("measure %+v", last)
	}
}
