package hallproc

import (
	"math"
	"slices"
	"testing"
)

func TestFreePortsDistinctAndAvoided(t *testing.T) {
	first, err := FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := FreePorts(5, first...)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("FreePorts(5) = %v", got)
	}
	for i, a := range got {
		if a == first[0] || slices.Contains(got[i+1:], a) {
			t.Fatalf("FreePorts(5, %s) = %v: repeated or avoided address", first[0], got)
		}
	}
}

func TestQuantileOverBuckets(t *testing.T) {
	text := "x_bucket{le=\"0.1\"} 5\nx_bucket{le=\"0.2\"} 10\nx_bucket{le=\"+Inf\"} 10\nx_count 10\n"
	bs := Buckets(text, "x")
	if len(bs) != 3 || !math.IsInf(bs[2].LE, 1) {
		t.Fatalf("Buckets = %v", bs)
	}
	if q := Quantile(bs, 0.5); q != 0.1 {
		t.Errorf("Quantile(0.5) = %v, want 0.1", q)
	}
	if q := Quantile(bs, 0.75); math.Abs(q-0.15) > 1e-9 {
		t.Errorf("Quantile(0.75) = %v, want 0.15", q)
	}
	if v, ok := Sample(text, "x_count"); !ok || v != "10" {
		t.Errorf("Sample(x_count) = %q, %v", v, ok)
	}
}

func TestInboxTakeRemovesAndWaitLooksFromMark(t *testing.T) {
	b := NewInbox()
	b.msgs = []Message{{Topic: "a"}, {Topic: "b"}}
	from := b.Mark()
	if _, ok := b.Wait(from, 0, nil, func(Message) bool { return true }); ok {
		t.Fatal("Wait from the mark matched a message before it")
	}
	m, ok := b.Take(0, func(m Message) bool { return m.Topic == "a" })
	if !ok || m.Topic != "a" || b.Len() != 1 {
		t.Fatalf("Take = %v, %v; %d left", m, ok, b.Len())
	}
}
