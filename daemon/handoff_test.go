package daemon

import (
	"testing"

	"github.com/hallguard/hallguard/devices"
)

// A full hand-off drops its oldest edges, keeps the newest, and folds each
// drop into the Lost of the edge after it, so the gap stays where it was.
func TestHandoffDropsOldestAndFoldsTheGap(t *testing.T) {
	h := newHandoff(4)
	drops := 0
	for i := 1; i <= 10; i++ {
		ev := devices.Event{Line: "smoke", Level: devices.Level(i%2 == 1), Seq: uint64(i)}
		if i == 3 {
			ev.Lost = 2 // the backend already lost two before this one
		}
		if h.put(ev) {
			drops++
		}
	}
	if drops != 6 {
		t.Errorf("%d drops reported, want 6", drops)
	}
	h.close()
	var got []devices.Event
	var caughtUp []bool
	for {
		ev, c, ok := h.get()
		if !ok {
			break
		}
		got = append(got, ev)
		caughtUp = append(caughtUp, c)
	}
	if len(got) != 4 {
		t.Fatalf("got %d edges, want the newest 4: %+v", len(got), got)
	}
	for i, ev := range got {
		if want := uint64(7 + i); ev.Seq != want {
			t.Errorf("edge %d: Seq %d, want %d (the newest are kept)", i, ev.Seq, want)
		}
	}
	// Seq 1..6 dropped, and the 2 lost before Seq 3: 8 lost before Seq 7.
	if got[0].Lost != 8 || got[1].Lost != 0 {
		t.Errorf("Lost = %d, %d; want 8 then 0", got[0].Lost, got[1].Lost)
	}
	if last := got[len(got)-1]; last.Level != devices.Low || last.Seq != 10 {
		t.Errorf("last edge %+v, want Seq 10 at low", last)
	}
	for i, c := range caughtUp {
		if c != (i == len(caughtUp)-1) {
			t.Errorf("caughtUp = %v, want true only on the last edge after a drop", caughtUp)
			break
		}
	}
	// Total edges accounted for: delivered + lost = last Seq.
	var lost uint64
	for _, ev := range got {
		lost += ev.Lost
	}
	if uint64(len(got))+lost != 10+2 {
		t.Errorf("delivered %d + lost %d, want 12 (10 edges and 2 lost by the backend)", len(got), lost)
	}
}

// A put after close is ignored, and get ends once the queue is empty.
func TestHandoffCloseEndsGet(t *testing.T) {
	h := newHandoff(2)
	h.put(devices.Event{Seq: 1})
	h.close()
	h.put(devices.Event{Seq: 2})
	if ev, _, ok := h.get(); !ok || ev.Seq != 1 {
		t.Fatalf("get = %+v, %v; want Seq 1", ev, ok)
	}
	if _, _, ok := h.get(); ok {
		t.Fatal("get after close and drain returned an edge")
	}
}
