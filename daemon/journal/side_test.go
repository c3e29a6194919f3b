package journal

import (
	"encoding/json"
	"testing"

	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/outbox"
)

// TestSideRecordsDurableLikeReports: a drill record (§1.3) and a review
// (§3.4) go through the outbox like reports: each is journalled as its own
// kind with its data (what drill history and exports read), replayed in
// order after a restart with its topic and payload, and gone once
// acknowledged.
func TestSideRecordsDurableLikeReports(t *testing.T) {
	clk := clock.NewFake(t0)
	path := dbPath(t)
	s := openT(t, path, Options{Clock: clk})
	ob := s.Outbox()
	drill := outbox.SideRecord{Kind: "drill", Key: "d1@1", Topic: "drills/d1", Payload: []byte(`{"id":"d1","outcome":"completed"}`),
		Data: json.RawMessage(`{"id":"d1","outcome":"completed"}`), Incident: "d1", Playbook: "fire", Drill: true}
	review := outbox.SideRecord{Kind: "review", Key: "inc-1@2", Topic: "reviews/inc-1", Payload: []byte("not JSON \x00 at all"),
		Data: json.RawMessage(`{"incident":"inc-1","by":"Li"}`), Incident: "inc-1", Playbook: "robbery"}
	ob.Push(outbox.Message{ID: drill.ID(), Side: &drill})
	ob.Push(message(0))
	ob.Push(outbox.Message{ID: review.ID(), Side: &review})
	waitFor(t, "3 durable", func() bool { return len(ob.Peek(10)) == 3 })
	recs, err := s.List(Filter{Kind: "drill"})
	if err != nil || len(recs) != 1 || string(recs[0].Data) != string(drill.Data) || recs[0].Incident != "d1" || !recs[0].Drill {
		t.Fatalf("drill records in the journal: %+v, %v; want one with the drill record's data", recs, err)
	}
	if recs, _ := s.List(Filter{Kind: "review"}); len(recs) != 1 || recs[0].Incident != "inc-1" {
		t.Fatalf("review records in the journal: %+v", recs)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, path, Options{Clock: clk})
	ob = s.Outbox()
	got := ob.Peek(10)
	if len(got) != 3 || got[0].ID != drill.ID() || got[1].ID != message(0).ID || got[2].ID != review.ID() {
		t.Fatalf("after restart: %v, want the drill record, the report, the review", ids(got))
	}
	if sd := got[2].Side; sd == nil || sd.Topic != review.Topic || string(sd.Payload) != string(review.Payload) || !got[2].Redelivered {
		t.Fatalf("the review after restart: %+v", got[2])
	}
	ob.Ack(drill.ID())
	ob.Ack(review.ID())
	waitFor(t, "acks on disk", func() bool { return s.Stats().Backlog == 0 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, path, Options{Clock: clk})
	if got := s.Outbox().Peek(10); len(got) != 1 || got[0].ID != message(0).ID {
		t.Fatalf("after the acks and a restart: %v, want the report only", ids(got))
	}
	if res, err := s.Verify(); err != nil || res.FirstBad != 0 {
		t.Errorf("Verify: %+v %v", res, err)
	}
}
