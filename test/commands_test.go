package test

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon"
	"github.com/hallguard/hallguard/devices/sim"
	"github.com/hallguard/hallguard/mqtt/command"

	"github.com/hallguard/hallguard/test/hallproc"
)

type reply struct {
	ID, Verb, Incident, Result, Reason string
}

// demoKey is the demo hall's HMAC key (configs/demo-command.key).
func demoKey(t *testing.T) command.Signer {
	t.Helper()
	k, err := daemon.ReadSigner(filepath.Join(repoRoot(t), "configs", "demo-command.key"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// send publishes a raw command payload and waits for its reply (the
// first one for id: ids are not reused within one subscriber).
func send(t *testing.T, sub *subscriber, root, verb, id string, payload []byte) reply {
	t.Helper()
	if tok := sub.c.Publish(root+"/cmd/"+verb, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	m := sub.wait(t, 10*time.Second, func(m message) bool {
		var r reply
		return m.Topic == root+"/cmd/reply" && json.Unmarshal(m.Payload, &r) == nil && r.ID == id
	})
	var r reply
	_ = json.Unmarshal(m.Payload, &r)
	return r
}

func TestCommandsAreVerifiedAnsweredAndCounted(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml")
	root := "hallguard/demo-hall"
	sub := subscribe(t, d.mqtt, root+"/#")
	key := demoKey(t)

	d.sim("press", "panic-teller-1")
	rep := sub.reportOn(t, 5*time.Second, root+"/alerts/robbery")
	inc := rep.Incident

	sign := func(verb string, msg command.Message, at time.Time) []byte {
		p, err := command.Sign(key, "demo-hall", root+"/cmd/"+verb, msg, at)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	now := time.Now()
	valid := sign("ack", command.Message{ID: "c-ack", Incident: inc, By: "center-op-7"}, now)
	cases := []struct {
		name, verb, id string
		payload        []byte
		reason         string
	}{
		{"bad signature", "ack", "c-badsig", []byte(strings.Replace(string(sign("ack", command.Message{ID: "c-badsig", Incident: inc, By: "x"}, now)), `"by":"x"`, `"by":"y"`, 1)), "bad_signature"},
		{"expired", "ack", "c-old", sign("ack", command.Message{ID: "c-old", Incident: inc, By: "x"}, now.Add(-10*time.Minute)), "expired"},
		{"oversize", "ack", "", []byte(`{"id":"c-big","by":"` + strings.Repeat("x", 5000) + `"}`), "too_large"},
		{"unsigned resolve of a robbery", "resolve", "c-unsigned", []byte(`{"id":"c-unsigned","by":"teller","incident":"` + inc + `"}`), "unsigned"},
		{"valid ack", "ack", "c-ack", valid, ""},
		{"replay of the ack", "ack", "c-ack", valid, "replay"},
		{"unknown incident", "ack", "c-unk", sign("ack", command.Message{ID: "c-unk", Incident: "nope", By: "x"}, now), "unknown_incident"},
	}
	for _, c := range cases {
		var r reply
		if c.id == "" { // an oversize payload has no id we can read back
			if tok := sub.c.Publish(root+"/cmd/"+c.verb, 1, false, c.payload); !tok.WaitTimeout(5 * time.Second) {
				t.Fatal("publish")
			}
			m := sub.wait(t, 5*time.Second, func(m message) bool {
				return m.Topic == root+"/cmd/reply" && strings.Contains(string(m.Payload), `"reason":"too_large"`)
			})
			_ = json.Unmarshal(m.Payload, &r)
		} else {
			// a replayed id answers twice: look at the newest reply
			before := len(sub.all())
			r = send(t, sub, root, c.verb, c.id, c.payload)
			if c.reason == "replay" {
				m := sub.wait(t, 5*time.Second, func(m message) bool {
					var rr reply
					return m.Topic == root+"/cmd/reply" && json.Unmarshal(m.Payload, &rr) == nil && rr.ID == c.id && rr.Reason == "replay"
				})
				_ = json.Unmarshal(m.Payload, &r)
			}
			_ = before
		}
		switch {
		case c.reason == "" && r.Result != "ok":
			t.Errorf("%s: reply %+v, want ok", c.name, r)
		case c.reason != "" && (r.Reason != c.reason || !strings.HasPrefix(r.Result, "error: ")):
			t.Errorf("%s: reply %+v, want error with reason %s", c.name, r, c.reason)
		}
	}
	// The valid ack changed the incident.
	sub.wait(t, 5*time.Second, func(m message) bool {
		var r report
		return m.Topic == root+"/alerts/robbery" && json.Unmarshal(m.Payload, &r) == nil && r.Event == "acknowledged" && r.State == "acknowledged"
	})
	text := d.metrics()
	for label, want := range map[string]string{
		`hallguard_commands_total{result="bad_signature",verb="ack"}`:    "1",
		`hallguard_commands_total{result="expired",verb="ack"}`:          "1",
		`hallguard_commands_total{result="too_large",verb="ack"}`:        "1",
		`hallguard_commands_total{result="unsigned",verb="resolve"}`:     "1",
		`hallguard_commands_total{result="replay",verb="ack"}`:           "1",
		`hallguard_commands_total{result="ok",verb="ack"}`:               "1",
		`hallguard_commands_total{result="unknown_incident",verb="ack"}`: "1",
	} {
		if v, _ := hallproc.Sample(text, label); v != want {
			t.Errorf("%s = %q, want %s", label, v, want)
		}
	}

	// Every rejection is journalled, with its reason; the accepted ack too.
	// (Rejections are journalled off the command path: poll.)
	wantJournal := []string{"command_rejected/bad_signature", "command_rejected/expired", "command_rejected/too_large",
		"command_rejected/unsigned", "command_rejected/replay", "command_rejected/unknown_incident", "command/"}
	journalled := func() map[string]bool {
		got := map[string]bool{}
		resp, err := http.Get("http://" + d.local + "/api/journal/export?format=jsonl")
		if err != nil {
			return got
		}
		jl, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(strings.TrimSpace(string(jl)), "\n") {
			var rec struct {
				Kind string `json:"kind"`
				Data struct {
					Reason string `json:"reason"`
				} `json:"data"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && (rec.Kind == "command_rejected" || rec.Kind == "command") {
				got[rec.Kind+"/"+rec.Data.Reason] = true
			}
		}
		return got
	}
	waitFor(t, 5*time.Second, func() bool {
		got := journalled()
		for _, w := range wantJournal {
			if !got[w] {
				return false
			}
		}
		return true
	}, fmt.Sprintf("journal records %v", wantJournal), d.logs)

	// hallguard cmd, the reference client, resolves it with a signed command.
	out, err := d.hg("cmd", "resolve", "-config", d.config, "-broker", "tcp://"+d.mqtt, "-incident", inc, "-by", "center-op-7")
	if err != nil || !strings.Contains(out, `"result":"ok"`) {
		t.Fatalf("hallguard cmd resolve: %v\n%s", err, out)
	}
	sub.wait(t, 5*time.Second, func(m message) bool {
		var r report
		return m.Topic == root+"/alerts/robbery" && json.Unmarshal(m.Payload, &r) == nil && r.Event == "resolved" && r.State == "resolved"
	})
}

// TestPressToReportLatency presses a panic button 200 times, each time
// resolving the robbery with a signed center command, and prints the
// latency from the input event to the PUBACK (the daemon's histogram) and
// to receipt by a subscriber.
func TestPressToReportLatency(t *testing.T) {
	const presses = 200
	d := startDaemon(t, "configs/demo.yaml")
	p := newPresser(t, d)
	var recv []time.Duration
	for i := 0; i < presses; i++ {
		recv = append(recv, p.press(i))
	}
	text := d.metrics()
	if v, _ := hallproc.Sample(text, "hallguard_report_latency_seconds_count"); v != strconv.Itoa(presses) {
		t.Fatalf("latency histogram count = %s, want %d", v, presses)
	}
	p50, p99 := histogramQuantile(t, text, "hallguard_report_latency_seconds", 0.5), histogramQuantile(t, text, "hallguard_report_latency_seconds", 0.99)
	t.Logf("%d presses: event -> PUBACK (histogram, bucket-interpolated): median %.2f ms, p99 %.2f ms", presses, p50*1000, p99*1000)
	t.Logf("%d presses: event -> subscriber receipt: %s", presses, summary(recv))
}

// TestDurableVsMemoryOutbox measures, in one run, what the durable outbox
// adds: two daemons, one journalling every report before sending it and one
// holding reports in memory only (-outbox memory), pressed alternately.
func TestDurableVsMemoryOutbox(t *testing.T) {
	const rounds = 100
	durable := newPresser(t, startDaemon(t, "configs/demo.yaml"))
	memory := newPresser(t, startDaemon(t, "configs/demo.yaml", "-outbox", "memory"))
	var a, b []time.Duration
	for i := 0; i < rounds; i++ {
		a = append(a, durable.press(i))
		b = append(b, memory.press(i))
	}
	t.Logf("durable outbox, event -> subscriber: %s", summary(a))
	t.Logf("memory outbox,  event -> subscriber: %s", summary(b))
	ma, mb := median(a), median(b)
	t.Logf("durable/memory: median %.2fx (+%.2f ms), p99 %.2fx", float64(ma)/float64(mb), ms(ma-mb),
		float64(quantile(a, 0.99))/float64(quantile(b, 0.99)))
	for _, d := range []*daemonProc{durable.d, memory.d} {
		if v, _ := hallproc.Sample(d.metrics(), "hallguard_report_latency_seconds_count"); v != strconv.Itoa(rounds) {
			t.Errorf("latency count = %s, want %d", v, rounds)
		}
	}
	if v, _ := hallproc.Sample(durable.d.metrics(), "hallguard_journal_fsync_duration_seconds_count"); v == "0" || v == "" {
		t.Errorf("the durable daemon made no journal commits")
	}
}

// presser raises and resolves robberies on one daemon.
type presser struct {
	t    *testing.T
	d    *daemonProc
	sub  *subscriber
	key  command.Signer
	sock string
	root string
	seen map[string]bool
}

func newPresser(t *testing.T, d *daemonProc) *presser {
	root := "hallguard/demo-hall"
	return &presser{t: t, d: d, sub: subscribe(t, d.mqtt, root+"/alerts/robbery"), key: demoKey(t),
		sock: filepath.Join(d.stateDir, "sim.sock"), root: root, seen: map[string]bool{}}
}

// press presses panic-teller-1, waits for the robbery report, resolves it
// with a signed center command, and returns the event -> receipt latency.
func (p *presser) press(i int) time.Duration {
	t := p.t
	t.Helper()
	if _, err := sim.Send(p.sock, "press panic-teller-1"); err != nil {
		t.Fatal(err)
	}
	m := p.sub.wait(t, 5*time.Second, func(m message) bool {
		var r report
		return json.Unmarshal(m.Payload, &r) == nil && r.Event == "raised" && !p.seen[r.Incident]
	})
	var r report
	_ = json.Unmarshal(m.Payload, &r)
	p.seen[r.Incident] = true
	occurred, err := time.Parse(time.RFC3339Nano, r.OccurredAt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Send(p.sock, "release panic-teller-1"); err != nil {
		t.Fatal(err)
	}
	pl, _ := command.Sign(p.key, "demo-hall", p.root+"/cmd/resolve", command.Message{ID: fmt.Sprintf("res-%d", i), Incident: r.Incident, By: "center"}, time.Now())
	if tok := p.sub.c.Publish(p.root+"/cmd/resolve", 1, false, pl); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	waitFor(t, 5*time.Second, func() bool {
		v, _ := hallproc.Sample(p.d.metrics(), `hallguard_incidents_active{drill="false",playbook="robbery"}`)
		return v == "0"
	}, "the robbery to be resolved", p.d.logs)
	// A release and press inside the 20 ms debounce period are contact
	// bounce, not a new press: let the line settle first.
	time.Sleep(50 * time.Millisecond)
	return m.At.Sub(occurred)
}

func quantile(d []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, i)]
}

func median(d []time.Duration) time.Duration { return quantile(d, 0.5) }

func summary(d []time.Duration) string {
	return fmt.Sprintf("median %.2f ms, p99 %.2f ms, max %.2f ms (n=%d)", ms(median(d)), ms(quantile(d, 0.99)), ms(quantile(d, 1)), len(d))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// histogramQuantile is Prometheus's histogram_quantile over one scrape.
func histogramQuantile(t *testing.T, text, name string, q float64) float64 {
	t.Helper()
	bs := hallproc.Buckets(text, name)
	if len(bs) == 0 {
		t.Fatalf("no %s buckets", name)
	}
	return hallproc.Quantile(bs, q)
}
