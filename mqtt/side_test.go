package mqtt

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/outbox"
)

func sideRecord(key string) outbox.SideRecord {
	return outbox.SideRecord{Kind: "drill", Key: key, Topic: "drills/" + key, Payload: []byte(`{"id":"` + key + `"}`),
		Data: json.RawMessage(`{"id":"` + key + `"}`), Incident: key, Playbook: "fire", Drill: true}
}

// TestSideRecordQueuedUntilPuback: a drill record made before the
// publisher is connected waits in the queue like a report, goes out on its own topic (not
// alerts/ nor incidents/, not retained) once connected, and leaves the
// queue only on its PUBACK; OnAck (reports) is not called for it,
// OnRecordAck is.
func TestSideRecordQueuedUntilPuback(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	c := collect(t, b.URL(), "#")
	var mu sync.Mutex
	var reportAcks []string
	var recordAcks []string
	q := outbox.NewMemQueue()
	p, err := New(testConfig(b.URL(), "hg-side"), testHall, Options{Queue: q, Clock: clock.Real{},
		OnAck: func(r engine.Report, _ time.Time) { mu.Lock(); reportAcks = append(reportAcks, r.ID); mu.Unlock() },
		OnRecordAck: func(m outbox.Message, _ time.Time) {
			mu.Lock()
			recordAcks = append(recordAcks, m.ID)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	rec := sideRecord("drill-1")
	p.Record(rec) // before Start: as while the broker is down
	p.Report(sampleReport("inc-1", 1))
	if q.Len() != 2 {
		t.Fatalf("queue holds %d, want the drill record and the report", q.Len())
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	eventually(t, "queue empty", func() bool { return q.Len() == 0 })
	eventually(t, "the drill record on drills/drill-1", func() bool { return len(c.on("/drills/drill-1")) == 1 })
	got := c.on("/drills/drill-1")[0]
	if string(got.payload) != string(rec.Payload) || got.retained {
		t.Errorf("drills/drill-1: %q retained %v, want %q not retained", got.payload, got.retained, rec.Payload)
	}
	if n := len(c.on("/alerts/fire")) + len(c.on("/incidents/drill-1")); n != 0 {
		t.Errorf("the drill record went out as a report too (%d)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(recordAcks) != 1 || recordAcks[0] != rec.ID() {
		t.Errorf("OnRecordAck calls %v, want [%s]", recordAcks, rec.ID())
	}
	if len(reportAcks) != 1 || reportAcks[0] != "inc-1.v1" {
		t.Errorf("OnAck calls %v, want the report only", reportAcks)
	}
}

// TestCenterAckQueueRetiresSideRecordsOnPuback: with end-to-end delivery
// (mqtt.ack_topic), the center acknowledges reports, never side records: a
// side record is retired on its PUBACK, not sent again every ack_timeout.
func TestCenterAckQueueRetiresSideRecordsOnPuback(t *testing.T) {
	clk := clock.NewFake(t0)
	inner := outbox.NewMemQueue()
	q := NewCenterAckQueue(inner, time.Minute, clk)
	defer q.Close()
	rec := sideRecord("drill-2")
	q.Push(outbox.Message{ID: rec.ID(), Side: &rec})
	q.Push(outbox.Message{ID: "inc-1.v1", Report: sampleReport("inc-1", 1)})
	q.Ack(rec.ID())
	q.Ack("inc-1.v1")
	if inner.Len() != 1 || inner.Peek(1)[0].ID != "inc-1.v1" {
		t.Fatalf("after both PUBACKs the queue holds %v, want the report only (awaiting the center)", inner.Peek(10))
	}
	clk.Advance(2 * time.Minute)
	for _, m := range q.Peek(10) {
		if m.ID == rec.ID() {
			t.Fatalf("the side record came back for the center's acknowledgement")
		}
	}
}

// TestNotDurableReportSaysSoOnTheWire: a report the queue lets go before it
// is on disk (a failing or hung disk) carries not_durable: true, so the
// center knows a restart could lose it; a durable one leaves it out.
func TestNotDurableReportSaysSoOnTheWire(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	c := collect(t, b.URL(), "#")
	q := outbox.NewMemQueue()
	q.Push(outbox.Message{ID: "inc-nd.v1", Report: sampleReport("inc-nd", 1), NotDurable: true})
	q.Push(outbox.Message{ID: "inc-nd.v2", Report: sampleReport("inc-nd", 2)})
	startPublisher(t, testConfig(b.URL(), "hg-nd"), Options{Queue: q})
	eventually(t, "both reports", func() bool { return len(c.on("/alerts/robbery")) == 2 })
	got := c.payloads("/alerts/robbery")
	if !strings.Contains(got[0], `"not_durable":true`) {
		t.Errorf("report sent from memory: %s, want not_durable true", got[0])
	}
	if strings.Contains(got[1], "not_durable") {
		t.Errorf("durable report: %s, want no not_durable", got[1])
	}
}
