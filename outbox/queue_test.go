package outbox

import (
	"slices"
	"testing"
)

func ids(ms []Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func TestMemQueue(t *testing.T) {
	for _, tc := range []struct {
		name string
		push []string
		ack  []string
		peek int
		want []string
	}{
		{"empty", nil, nil, 3, nil},
		{"fifo", []string{"a", "b", "c"}, nil, 2, []string{"a", "b"}},
		{"peek more than held", []string{"a", "b"}, nil, 5, []string{"a", "b"}},
		{"ack head", []string{"a", "b", "c"}, []string{"a"}, 5, []string{"b", "c"}},
		{"ack middle", []string{"a", "b", "c"}, []string{"b"}, 5, []string{"a", "c"}},
		{"ack unknown", []string{"a"}, []string{"x"}, 5, []string{"a"}},
		{"ack all then push", []string{"a", "b"}, []string{"a", "b"}, 5, nil},
		{"negative peek", []string{"a"}, nil, -1, nil},
	} {
		q := NewMemQueue()
		for _, id := range tc.push {
			q.Push(Message{ID: id})
		}
		for _, id := range tc.ack {
			q.Ack(id)
		}
		if got := ids(q.Peek(tc.peek)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Peek(%d) = %v, want %v", tc.name, tc.peek, got, tc.want)
		}
		if q.Len() != len(tc.push)-countIn(tc.ack, tc.push) {
			t.Errorf("%s: Len = %d", tc.name, q.Len())
		}
	}
}

func countIn(xs, in []string) int {
	n := 0
	for _, x := range xs {
		if slices.Contains(in, x) {
			n++
		}
	}
	return n
}

func TestMemQueuePeekIsACopy(t *testing.T) {
	q := NewMemQueue()
	q.Push(Message{ID: "a"})
	got := q.Peek(1)
	got[0].ID = "changed"
	if q.Peek(1)[0].ID != "a" {
		t.Error("Peek shares the queue's storage")
	}
}
