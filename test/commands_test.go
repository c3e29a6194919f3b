package test

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hallguard/hallguard/daemon"
	"github.com/hallguard/hallguard/devices/sim"
	"github.com/hallguard/hallguard/mqtt/command"
)

type reply struct {
	ID, Verb, Incident, Result, Reason string
}

func demoKey(t *testing.T) []byte {
	t.Helper()
	k, err := daemon.ReadKey(filepath.Join(repoRoot(t), "configs", "demo-command.key"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// send publishes a raw command payload and waits for its reply.
func send(t *testing.T, sub *subscriber, root, verb, id string, payload []byte) reply {
	t.Helper()
	if tok := sub.c.Publish(root+"/cmd/"+verb, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	m := sub.wait(t, 5*time.Second, func(m message) bool {
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
	m := sub.wait(t, 5*time.Second, func(m message) bool { return m.Topic == root+"/alerts/robbery" })
	var rep report
	_ = json.Unmarshal(m.Payload, &rep)
	inc := rep.Incident

	sign := func(verb string, msg command.Message, at time.Time) []byte {
		p, err := command.Sign(key, verb, msg, at)
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
		if v, _ := metric(text, label); v != want {
			t.Errorf("%s = %q, want %s", label, v, want)
		}
	}

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
	root := "hallguard/demo-hall"
	sub := subscribe(t, d.mqtt, root+"/alerts/robbery")
	key := demoKey(t)
	sock := filepath.Join(d.stateDir, "sim.sock")
	var recv []time.Duration
	for i := 0; i < presses; i++ {
		if _, err := sim.Send(sock, "press panic-teller-1"); err != nil {
			t.Fatal(err)
		}
		m := sub.wait(t, 5*time.Second, func(m message) bool {
			var r report
			return json.Unmarshal(m.Payload, &r) == nil && r.Event == "raised" && !seen[r.Incident]
		})
		var r report
		_ = json.Unmarshal(m.Payload, &r)
		seen[r.Incident] = true
		occurred, err := time.Parse(time.RFC3339Nano, r.OccurredAt)
		if err != nil {
			t.Fatal(err)
		}
		recv = append(recv, m.At.Sub(occurred))
		if _, err := sim.Send(sock, "release panic-teller-1"); err != nil {
			t.Fatal(err)
		}
		// A release and press inside the 20 ms debounce period are contact
		// bounce, not a new press: let the line settle first.
		time.Sleep(50 * time.Millisecond)
		p, _ := command.Sign(key, "resolve", command.Message{ID: fmt.Sprintf("res-%d", i), Incident: r.Incident, By: "center"}, time.Now())
		if tok := sub.c.Publish(root+"/cmd/resolve", 1, false, p); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		waitFor(t, 5*time.Second, func() bool {
			v, _ := metric(d.metrics(), `hallguard_incidents_active{drill="false",playbook="robbery"}`)
			return v == "0"
		}, "the robbery to be resolved", d.logs)
	}
	text := d.metrics()
	if v, _ := metric(text, "hallguard_report_latency_seconds_count"); v != strconv.Itoa(presses) {
		t.Fatalf("latency histogram count = %s, want %d", v, presses)
	}
	p50, p99 := histogramQuantile(t, text, "hallguard_report_latency_seconds", 0.5), histogramQuantile(t, text, "hallguard_report_latency_seconds", 0.99)
	sort.Slice(recv, func(i, j int) bool { return recv[i] < recv[j] })
	t.Logf("%d presses: event -> PUBACK (histogram, bucket-interpolated): median %.2f ms, p99 %.2f ms", presses, p50*1000, p99*1000)
	t.Logf("%d presses: event -> subscriber receipt: median %.2f ms, p99 %.2f ms, max %.2f ms", presses,
		ms(recv[len(recv)/2]), ms(recv[int(math.Ceil(0.99*float64(len(recv))))-1]), ms(recv[len(recv)-1]))
}

var seen = map[string]bool{}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// histogramQuantile is Prometheus's histogram_quantile over one scrape.
func histogramQuantile(t *testing.T, text, name string, q float64) float64 {
	t.Helper()
	type bucket struct{ le, n float64 }
	var bs []bucket
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+`_bucket{le="`) {
			continue
		}
		rest := strings.TrimPrefix(line, name+`_bucket{le="`)
		i := strings.Index(rest, `"}`)
		le, n := rest[:i], strings.TrimSpace(rest[i+2:])
		f, _ := strconv.ParseFloat(n, 64)
		l := math.Inf(1)
		if le != "+Inf" {
			l, _ = strconv.ParseFloat(le, 64)
		}
		bs = append(bs, bucket{l, f})
	}
	if len(bs) == 0 {
		t.Fatalf("no %s buckets", name)
	}
	total := bs[len(bs)-1].n
	rank := q * total
	prevLe, prevN := 0.0, 0.0
	for _, b := range bs {
		if b.n >= rank {
			if math.IsInf(b.le, 1) {
				return prevLe
			}
			return prevLe + (b.le-prevLe)*(rank-prevN)/(b.n-prevN)
		}
		prevLe, prevN = b.le, b.n
	}
	return prevLe
}

var _ = paho.NewClient
