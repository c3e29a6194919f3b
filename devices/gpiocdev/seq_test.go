package gpiocdev

import (
	"testing"
	"time"
)

func TestSeqTracker(t *testing.T) {
	type step struct {
		n         uint32
		seq, lost uint64
	}
	cases := []struct {
		name  string
		init  seqTracker
		steps []step
	}{
		{"consecutive", seqTracker{}, []step{{1, 1, 0}, {2, 2, 0}, {3, 3, 0}}},
		{"gap", seqTracker{}, []step{{1, 1, 0}, {5, 5, 3}, {6, 6, 0}}},
		{"first event after losses", seqTracker{}, []step{{4, 4, 3}}},
		{"uapi v1 has no seqno", seqTracker{}, []step{{0, 1, 0}, {0, 2, 0}, {0, 3, 0}}},
		{"wrap-around", seqTracker{seen: true, last: 0xfffffffd, seq: 0xfffffffd}, []step{{0xfffffffe, 0xfffffffe, 0}, {0xffffffff, 0xffffffff, 0}, {0, 0x100000000, 0}, {2, 0x100000002, 1}}},
		{"repeat is not a gap", seqTracker{}, []step{{1, 1, 0}, {1, 2, 0}, {2, 3, 0}}},
		{"backwards is not a gap", seqTracker{}, []step{{10, 10, 9}, {3, 11, 0}, {4, 12, 0}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := c.init
			for i, s := range c.steps {
				seq, lost := tr.next(s.n)
				if seq != s.seq || lost != s.lost {
					t.Errorf("step %d (LineSeqno %d): got seq %d lost %d, want seq %d lost %d", i, s.n, seq, lost, s.seq, s.lost)
				}
			}
		})
	}
}

func TestEventTime(t *testing.T) {
	wall := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	realtime := time.Date(2025, 3, 1, 9, 59, 59, 0, time.UTC)
	cases := []struct {
		name     string
		ts, mono time.Duration
		want     time.Time
	}{
		{"monotonic 2ms ago", 100*time.Second - 2*time.Millisecond, 100 * time.Second, wall.Add(-2 * time.Millisecond)},
		{"monotonic now", 100 * time.Second, 100 * time.Second, wall},
		{"monotonic an hour ago", time.Hour, 2 * time.Hour, wall.Add(-time.Hour)},
		{"realtime stamp (pre-5.7 kernel)", time.Duration(realtime.UnixNano()), 100 * time.Second, realtime},
		{"monotonic unknown", 5 * time.Second, -1, wall},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := eventTime(c.ts, c.mono, wall); !got.Equal(c.want) {
				t.Errorf("eventTime(%v, %v) = %v, want %v", c.ts, c.mono, got, c.want)
			}
		})
	}
}
