package mqtt

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/devices/clock"
)

var testFormatter = formatter{root: "hallguard/main-st", loc: time.UTC, now: func() time.Time { return t0 }}

const goldenReport = `07:45:12.123  ROBBERY (§4.3(a)) armed  raised  v1  incident 20260301T074512-a3f9c1
  hall: 营业厅 (Main St. 1)
  origin: button panic-teller-1  state: active  silent
  impact: unknown | control: unknown | trend: unknown
  measures: police-link on (§4.3(a)2)
  [ ] §4.3(a)1 Stay calm, lock the safe, take cover.
  [ ] §4.3(a)2 Call 110 and report to the center manager.
`

func TestWatchFormatsReport(t *testing.T) {
	r := sampleReport("20260301T074512-a3f9c1", 1)
	b, err := MarshalReport(r, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := testFormatter.format("hallguard/main-st/alerts/robbery", b, false); got != goldenReport {
		t.Errorf("got\n%s\nwant\n%s", got, goldenReport)
	}

	r.Version, r.Event, r.Drill, r.Presses, r.Other = 3, engine.EventEscalation, true, 2, "door locked"
	r.Steps[0].Done, r.Steps[0].By, r.Steps[0].At = true, "Chen", t0.Add(48*time.Second)
	r.Escalation = &engine.EscalationInfo{Level: 1, Role: "center_manager", Name: "Wang", Contact: "8001", After: time.Minute}
	b, _ = MarshalReport(r, t0.Add(time.Minute))
	want := `07:46:12.123  DRILL ROBBERY (§4.3(a)) armed  escalation  v3  incident 20260301T074512-a3f9c1
  hall: 营业厅 (Main St. 1)
  origin: button panic-teller-1  state: active  silent  presses: 2
  impact: unknown | control: unknown | trend: unknown | other: door locked
  measures: police-link on (§4.3(a)2)
  escalation: level 1 to center_manager Wang (8001) after 60s
  [x] §4.3(a)1 Stay calm, lock the safe, take cover.  (Chen 07:46:00.123)
  [ ] §4.3(a)2 Call 110 and report to the center manager.
`
	if got := testFormatter.format("hallguard/main-st/drills/alerts/robbery", b, false); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// A walk test's hold-up press reaches alerts/robbery as a real robbery
// would; the center's reader must see at once that it is a test.
func TestWatchMarksAWalkTestsHoldUpPress(t *testing.T) {
	r := sampleReport("20260301T074512-a3f9c1", 1)
	r.Test = true
	b, err := MarshalReport(r, t0)
	if err != nil {
		t.Fatal(err)
	}
	got := testFormatter.format("hallguard/main-st/alerts/robbery", b, false)
	if !strings.HasPrefix(got, "07:45:12.123  TEST ROBBERY (§4.3(a)) armed  raised") {
		t.Errorf("got\n%s", got)
	}
}

func TestWatchFormatsLines(t *testing.T) {
	js := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	incident, _ := MarshalReport(sampleReport("inc-1", 2), t0)
	for _, tc := range []struct {
		topic    string
		payload  []byte
		retained bool
		want     string
	}{
		{"hallguard/main-st/status", []byte("online"), true, "07:45:12.123  status: online  (retained)\n"},
		{"hallguard/main-st/inputs/panic-1", js(newInputPayload(engine.InputState{ID: "panic-1", Active: true, State: "active", Since: t0, Edges: 3, LostEdges: 1, Faults: []string{"stuck"}})), false,
			"07:45:12.123  inputs/panic-1: ACTIVE (active since 07:45:12.123, 3 edges, 1 lost, faults stuck)\n"},
		{"hallguard/main-st/queue", js(newQueuePayload(engine.QueueState{Length: 12, Rate: 3.5, Arrivals: 40, Departures: 28, Surge: true})), false,
			"07:45:12.123  queue: 12 waiting, 3.5 arrivals/min, 40 in, 28 out, SURGE\n"},
		{"hallguard/main-st/incidents/inc-1", incident, true, "07:45:12.123  incidents/inc-1: v2 robbery active  (retained)\n"},
		{"hallguard/main-st/conditions", []byte("[]"), true, "07:45:12.123  conditions: none active  (retained)\n"},
		{"hallguard/main-st/conditions", js([]ConditionPayload{{Class: "tamper", Kind: "loop_open", Input: "door-1", Active: true}, {Class: "trouble", Kind: "broker", Detail: "unreachable 5m"}}), false,
			"07:45:12.123  conditions: 2 active: tamper loop_open door-1; trouble broker (unreachable 5m)\n"},
		{"hallguard/main-st/events/condition", js(ConditionPayload{Class: "trouble", Kind: "stuck", Input: "panic-2"}), false,
			"07:45:12.123  events/condition: cleared trouble stuck panic-2\n"},
		{"hallguard/main-st/cmd/ack", []byte(`{"incident":"inc-1"}`), false, "07:45:12.123  cmd/ack: {\"incident\":\"inc-1\"}\n"},
		{"hallguard/main-st/inputs/status", js(InputPayload{ID: "status", State: "idle"}), false, "07:45:12.123  inputs/status: idle (idle since --:--:--.---, 0 edges)\n"},
		{"hallguard/main-st/alerts/fire", []byte("not json"), false, "07:45:12.123  alerts/fire: not json\n"},
		{"elsewhere/x", []byte("a\nb"), false, "07:45:12.123  elsewhere/x: a b\n"},
	} {
		if got := testFormatter.format(tc.topic, tc.payload, tc.retained); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.topic, got, tc.want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the watcher's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestWatchShowsWhatThePublisherSends(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	p := startPublisher(t, testConfig(b.URL(), "hg-watch"), Options{Clock: clock.NewFake(t0)})
	eventually(t, "connection", p.Connected)

	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- watch(ctx, b.URL(), "hallguard/main-st", &out, testFormatter) }()
	eventually(t, "watcher subscribed (retained status shown)", func() bool {
		return strings.Contains(out.String(), "status: online  (retained)")
	})

	p.Report(sampleReport("20260301T074512-a3f9c1", 1))
	eventually(t, "report shown", func() bool { return strings.Contains(out.String(), goldenReport) })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("watch: %v", err)
	}
	if !strings.Contains(out.String(), "incidents/20260301T074512-a3f9c1: v1 robbery active\n") {
		t.Errorf("no incident line in\n%s", out.String())
	}
}

func TestWatchFailsWithoutBroker(t *testing.T) {
	err := Watch(context.Background(), "tcp://"+freeAddr(t), "hallguard", &bytes.Buffer{})
	if err == nil {
		t.Fatal("no error")
	}
}
