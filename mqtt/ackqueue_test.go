package mqtt

import (
	"testing"
	"time"

	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/outbox"
)

func TestCenterAckQueue(t *testing.T) {
	clk := clock.NewFake(t0)
	inner := outbox.NewMemQueue()
	q := NewCenterAckQueue(inner, time.Minute, clk)
	defer q.Close()
	for i := 1; i <= 3; i++ {
		q.Push(outbox.Message{ID: sampleReport("inc-1", i).ID, Report: sampleReport("inc-1", i)})
	}
	ids := func(ms []outbox.Message) (out []string) {
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	first := q.Peek(10)
	if len(first) != 3 {
		t.Fatalf("Peek = %v", ids(first))
	}
	// PUBACK for the first two: not resent at once, still held.
	q.Ack(first[0].ID)
	q.Ack(first[1].ID)
	if got := ids(q.Peek(10)); len(got) != 1 || got[0] != first[2].ID {
		t.Fatalf("after PUBACKs Peek = %v, want only the third", got)
	}
	if q.Len() != 3 || q.AwaitingCenter() != 2 {
		t.Fatalf("Len %d awaiting %d, want 3 and 2", q.Len(), q.AwaitingCenter())
	}
	// The center acknowledges the first: it is gone for good.
	if !q.CenterAck(first[0].ID) || q.Len() != 2 {
		t.Fatalf("CenterAck: len %d", q.Len())
	}
	if q.CenterAck("unknown") {
		t.Errorf("CenterAck of an unknown id reported held")
	}
	// No word from the center on the second: after the timeout it is due
	// again, oldest first, marked redelivered.
	clk.Advance(time.Minute)
	got := q.Peek(10)
	if len(got) != 2 || got[0].ID != first[1].ID || !got[0].Redelivered || got[1].Redelivered {
		t.Fatalf("after the timeout Peek = %+v", got)
	}
	select {
	case <-q.Notify():
	default:
		t.Errorf("no notification when a report fell due again")
	}
}
