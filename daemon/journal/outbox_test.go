package journal

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/outbox"
)

func ids(msgs []outbox.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

// TestOutboxSurvivesRestart: 100 pushed, the store closed without acks (as
// after a crash), reopened: the 100 come back in order, Redelivered, with
// their ids, seqs and occurred_at; 40 acked, reopened: 60 remain.
func TestOutboxSurvivesRestart(t *testing.T) {
	clk := clock.NewFake(t0)
	path := dbPath(t)
	s := openT(t, path, Options{Clock: clk})
	ob := s.Outbox()
	var want []outbox.Message
	for i := range 100 {
		m := message(i)
		want = append(want, m)
		ob.Push(m)
	}
	if ob.Len() != 100 {
		t.Fatalf("Len = %d", ob.Len())
	}
	waitFor(t, "100 durable", func() bool { return len(ob.Peek(1000)) == 100 })
	if got := ob.Peek(1000); !reflect.DeepEqual(got, want) {
		t.Fatalf("Peek before restart differs from what was pushed")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, path, Options{Clock: clk})
	ob = s.Outbox()
	got := ob.Peek(1000)
	if len(got) != 100 || ob.Len() != 100 {
		t.Fatalf("after restart: Peek %d, Len %d; want 100", len(got), ob.Len())
	}
	for i, m := range got {
		w := want[i]
		if m.ID != w.ID || m.Report.ID != w.Report.ID || m.Report.Seq != w.Report.Seq || !m.Redelivered ||
			!m.Report.OccurredAt.Equal(w.Report.OccurredAt) || !m.Report.Created.Equal(w.Report.Created) {
			t.Fatalf("message %d after restart: id %s seq %d redelivered %v occurred %v; want %s %d true %v",
				i, m.ID, m.Report.Seq, m.Redelivered, m.Report.OccurredAt, w.ID, w.Report.Seq, w.Report.OccurredAt)
		}
		if m.Report.Measures[0].Text != w.Report.Measures[0].Text || m.Report.Hall != w.Report.Hall || m.Report.Drill != w.Report.Drill {
			t.Fatalf("message %d: report content changed", i)
		}
	}
	if !ob.OldestPending().Equal(want[0].Report.Created) {
		t.Errorf("OldestPending = %v, want %v", ob.OldestPending(), want[0].Report.Created)
	}
	// Ack 40: the first 30 and 10 from the middle, as a publisher with
	// several in flight might.
	acked := map[string]bool{}
	for i := range 30 {
		acked[want[i].ID] = true
	}
	for i := 50; i < 60; i++ {
		acked[want[i].ID] = true
	}
	for id := range acked {
		ob.Ack(id)
	}
	ob.Ack("no-such-id")
	if ob.Len() != 60 {
		t.Fatalf("Len after 40 acks = %d", ob.Len())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, path, Options{Clock: clk})
	ob = s.Outbox()
	var left []string
	for _, m := range want {
		if !acked[m.ID] {
			left = append(left, m.ID)
		}
	}
	if got := ids(ob.Peek(1000)); !reflect.DeepEqual(got, left) {
		t.Fatalf("after acks and restart: %d pending %v\nwant %d %v", len(got), got, len(left), left)
	}
	if !ob.OldestPending().Equal(want[30].Report.Created) {
		t.Errorf("OldestPending = %v, want %v", ob.OldestPending(), want[30].Report.Created)
	}
	// Every report has its journal record, whole.
	recs, err := s.List(Filter{Kind: "report"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 100 {
		t.Fatalf("%d report records, want 100", len(recs))
	}
	for i, r := range recs {
		var d reportData
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatal(err)
		}
		w := want[i].Report
		if d.ID != want[i].ID || d.Seq != w.Seq || d.Incident != w.Incident || d.Version != w.Version ||
			r.Incident != w.Incident || r.Playbook != w.Playbook || r.Drill != w.Drill || len(d.Report) == 0 {
			t.Fatalf("report record %d: %+v / %s", i, r, r.Data)
		}
	}
	if res, err := s.Verify(); err != nil || res.FirstBad != 0 || res.Records != 100 {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
	if st := s.Stats(); st.Pending != 60 || st.Records != 100 || st.Bytes == 0 || st.Degraded {
		t.Errorf("Stats = %+v", st)
	}
}

// TestOutboxPeeksOnlyDurable: a report is not peekable while its commit is
// in flight; Notify fires when it is.
func TestOutboxPeeksOnlyDurable(t *testing.T) {
	hold := make(chan struct{})
	inTx := make(chan struct{}, 16)
	var holding = true
	s := openT(t, dbPath(t), Options{writeFault: func() error {
		if holding {
			inTx <- struct{}{}
			<-hold
		}
		return nil
	}})
	ob := s.Outbox()
	select { // drain a notify from Open, if any
	case <-ob.Notify():
	default:
	}
	ob.Push(message(1))
	<-inTx // the commit is in flight
	if got := ob.Peek(10); len(got) != 0 {
		t.Fatalf("Peek during the commit returned %v", ids(got))
	}
	if ob.Len() != 1 {
		t.Fatalf("Len = %d", ob.Len())
	}
	holding = false // read by the committer only after hold is closed
	close(hold)
	select {
	case <-ob.Notify():
	case <-time.After(30 * time.Second):
		t.Fatal("no Notify after the commit")
	}
	if got := ob.Peek(10); len(got) != 1 || got[0].ID != message(1).ID || got[0].Redelivered {
		t.Fatalf("Peek after the commit: %v", got)
	}
}

func TestOutboxPushAfterClose(t *testing.T) {
	s := openT(t, dbPath(t), Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ob := s.Outbox()
	ob.Push(message(1))
	if got := ob.Peek(10); len(got) != 1 {
		t.Fatalf("a report pushed after Close is not delivered from memory: %v", got)
	}
	if _, err := s.Append(Record{Kind: "input"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
