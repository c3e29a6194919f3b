package test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/mqtt/command"

	"github.com/hallguard/hallguard/test/hallproc"
)

// TestCenterAcknowledgement runs the daemon with mqtt.ack_topic: a report
// the broker took but the center did not acknowledge is sent again with
// the same id, survives a restart, and stops once the center acknowledges.
func TestCenterAcknowledgement(t *testing.T) {
	path := demoConfigCopy(t, func(s string) string {
		return strings.Replace(s, "  topic_prefix: hallguard\n", "  topic_prefix: hallguard\n  ack_topic: cmd/received\n  ack_timeout: 5s\n", 1)
	})
	d := startDaemon(t, path)
	root := "hallguard/demo-hall"
	sub := subscribe(t, d.mqtt, root+"/#")
	d.sim("press", "panic-teller-1")
	isRobbery := func(m message) bool { return m.Topic == root+"/alerts/robbery" }
	first := sub.wait(t, 5*time.Second, isRobbery)
	var r report
	_ = json.Unmarshal(first.Payload, &r)

	// No acknowledgement from the center: the same report comes again.
	again := sub.wait(t, 15*time.Second, func(m message) bool {
		var x struct {
			ID          string `json:"id"`
			Redelivered bool   `json:"redelivered"`
		}
		return isRobbery(m) && m.At.After(first.At) && json.Unmarshal(m.Payload, &x) == nil && x.ID == r.ID && x.Redelivered
	})
	t.Logf("resent after %s without a center acknowledgement", again.At.Sub(first.At).Round(time.Millisecond))
	if v, _ := hallproc.Sample(d.metrics(), "hallguard_outbox_pending"); v != "1" {
		t.Errorf("outbox pending = %s, want 1 until the center acknowledges", v)
	}

	// A restart keeps it: replayed from the durable outbox.
	d.stop()
	d2 := startDaemonOn(t, path, d.stateDir)
	sub2 := subscribe(t, d2.mqtt, root+"/#")
	sub2.wait(t, 10*time.Second, func(m message) bool {
		return isRobbery(m) && strings.Contains(string(m.Payload), `"id":"`+r.ID+`"`) && strings.Contains(string(m.Payload), `"redelivered":true`)
	})

	// The restarted daemon also reports that it restored the incident (v2).
	restored := sub2.wait(t, 10*time.Second, func(m message) bool {
		return isRobbery(m) && strings.Contains(string(m.Payload), `"id":"`+r.Incident+`.v2"`)
	})
	_ = restored
	// The center acknowledges both: no more resends.
	for i, id := range []string{r.ID, r.Incident + ".v2"} {
		cid := fmt.Sprintf("rcv-%d", i)
		p, err := command.Sign(demoKey(t), "demo-hall", "hallguard/demo-hall/cmd/received", command.Message{ID: cid, By: "center", Report: id}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if rep := send(t, sub2, root, "received", cid, p); rep.Result != "ok" {
			t.Fatalf("received %s: %+v", id, rep)
		}
	}
	waitFor(t, 5*time.Second, func() bool {
		v, _ := hallproc.Sample(d2.metrics(), "hallguard_outbox_pending")
		return v == "0"
	}, "the outbox to empty after the center's acknowledgement", d2.logs)
	n := len(sub2.all())
	time.Sleep(7 * time.Second) // past ack_timeout: nothing more may come
	for _, m := range sub2.all()[n:] {
		if isRobbery(m) {
			t.Errorf("report sent again after the center acknowledged it: %s", m.Payload)
		}
	}
}
