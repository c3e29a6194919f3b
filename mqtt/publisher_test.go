package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/devices/clock"
)

func TestReportReachesAlertsAndIncidents(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	topics := NewTopics("", testHall.ID)
	col := collect(t, b.URL(), topics.All())
	p := startPublisher(t, testConfig(b.URL(), "hg-report"), Options{})

	v1 := sampleReport("inc-1", 1)
	v2 := sampleReport("inc-1", 2)
	v2.Event, v2.Impact = engine.EventEscalation, "two customers held"
	v2.Escalation = &engine.EscalationInfo{Level: 1, Role: "center_manager", Title: "客服中心经理", Name: "Wang", Contact: "+86 10 1234", After: time.Minute}
	drill := sampleReport("inc-2", 1)
	drill.Drill = true
	p.Report(v1)
	p.Report(v2)
	p.Report(drill)

	eventually(t, "3 alerts", func() bool {
		return len(col.on(topics.Alert("robbery", false)))+len(col.on(topics.Alert("robbery", true))) == 3
	})
	alerts := col.on(topics.Alert("robbery", false))
	if len(alerts) != 2 {
		t.Fatalf("%d messages on alerts/robbery, want 2 (the drill must not be there)", len(alerts))
	}
	var fields map[string]any
	if err := json.Unmarshal(alerts[0].payload, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "incident", "seq", "version", "event", "playbook", "section", "state",
		"origin", "source", "drill", "silent", "hall", "occurred_at", "type", "type_zh", "variant", "impact",
		"measures", "control", "trend", "other", "steps", "presses", "inputs", "redelivered", "sent_at"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("report JSON has no %q", k)
		}
	}
	if _, ok := fields["escalation"]; ok {
		t.Error("escalation present on a report without one")
	}
	hall := fields["hall"].(map[string]any)
	if hall["name"] != "营业厅" || hall["location"] != "Main St. 1" || hall["id"] != "main-st" {
		t.Errorf("hall = %v", hall)
	}
	if fields["variant"] != "armed" || fields["impact"] != "unknown" || fields["control"] != "unknown" ||
		fields["trend"] != "unknown" || fields["other"] != "unknown" || fields["type"] != "robbery" || fields["type_zh"] != "抢劫" {
		t.Errorf("§3.3 fields: variant %v impact %v control %v trend %v other %v type %v/%v",
			fields["variant"], fields["impact"], fields["control"], fields["trend"], fields["other"], fields["type"], fields["type_zh"])
	}
	got := col.reports(t, topics.Alert("robbery", false))
	if got[0].ID != v1.ID || got[1].ID != v2.ID || got[1].Escalation == nil || got[1].Escalation.AfterSeconds != 60 || got[1].Impact != "two customers held" {
		t.Errorf("alerts = %+v", got)
	}
	if d := col.reports(t, topics.Alert("robbery", true)); len(d) != 1 || !d[0].Drill {
		t.Errorf("drill alerts = %+v", d)
	}

	eventually(t, "queue drained", func() bool { return p.Pending() == 0 })
	var latest ReportPayload
	if err := json.Unmarshal([]byte(retainedOn(t, b.URL(), topics.Incident("inc-1"))), &latest); err != nil {
		t.Fatal(err)
	}
	if latest.ID != v2.ID {
		t.Errorf("retained incidents/inc-1 holds %s, want %s", latest.ID, v2.ID)
	}
}

func TestStatusBirthWillAndClose(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	topics := NewTopics("", testHall.ID)
	col := collect(t, b.URL(), topics.Status())
	fake := clock.NewFake(t0)
	var mu sync.Mutex
	var conns []bool
	p, err := New(testConfig(b.URL(), "hg-status"), testHall, Options{Clock: fake, OnConnect: func(c bool) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	status := func() []string { return col.payloads(topics.Status()) }

	eventually(t, "birth", func() bool { return slices.Equal(status(), []string{"online"}) })
	if got := retainedOn(t, b.URL(), topics.Status()); got != "online" {
		t.Errorf("retained status %q after birth", got)
	}

	if !b.Disconnect("hg-status") {
		t.Fatal("publisher not connected to the broker")
	}
	eventually(t, "will", func() bool { return slices.Equal(status(), []string{"online", "offline"}) })

	advanceUntil(t, fake, "reconnect", p.Connected)
	eventually(t, "second birth", func() bool { return slices.Equal(status(), []string{"online", "offline", "online"}) })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	eventually(t, "offline on close", func() bool { return len(status()) == 4 && status()[3] == "offline" })
	if got := retainedOn(t, b.URL(), topics.Status()); got != "offline" {
		t.Errorf("retained status %q after Close", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(conns, []bool{true, false, true, false}) {
		t.Errorf("OnConnect calls %v", conns)
	}
}

func TestBrokerDownAtStart(t *testing.T) {
	addr := freeAddr(t)
	topics := NewTopics("", testHall.ID)
	fake := clock.NewFake(t0)
	p := startPublisher(t, testConfig("tcp://"+addr, "hg-down"), Options{Clock: fake})
	eventually(t, "first attempt to fail", func() bool { return fake.Pending() > 0 })

	var want []string
	for v := 1; v <= 5; v++ {
		r := sampleReport("inc-boot", v)
		want = append(want, r.ID)
		p.Report(r)
	}
	if p.Pending() != 5 || p.Connected() {
		t.Fatalf("pending %d connected %v before the broker is up", p.Pending(), p.Connected())
	}

	b := startBroker(t, addr)
	col := collect(t, b.URL(), topics.Under("alerts/#"))
	advanceUntil(t, fake, "connection", p.Connected)
	eventually(t, "5 alerts", func() bool { return len(col.on("/alerts/robbery")) >= 5 })
	var got []string
	for _, r := range col.reports(t, "/alerts/robbery") {
		got = append(got, r.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("received %v, want %v", got, want)
	}
	eventually(t, "queue drained", func() bool { return p.Pending() == 0 })
}

func TestBrokerRestartMidStream(t *testing.T) {
	b1 := startBroker(t, "127.0.0.1:0")
	addr := b1.Addr()
	topics := NewTopics("", testHall.ID)
	col := collect(t, b1.URL(), topics.Under("alerts/#"))
	fake := clock.NewFake(t0)
	var fails sync.Map
	p := startPublisher(t, testConfig(b1.URL(), "hg-restart"), Options{Clock: fake, OnFail: func(r engine.Report, _ error) {
		fails.Store(r.ID, true)
	}})
	eventually(t, "connection", p.Connected)

	const n, incidents = 50, 5
	versions := map[string]int{}
	var sent []string
	report := func() {
		inc := "inc-" + strconv.Itoa(len(sent)%incidents)
		versions[inc]++
		r := sampleReport(inc, versions[inc])
		r.Seq = uint64(len(sent) + 1)
		sent = append(sent, r.ID)
		p.Report(r)
	}
	for range n / 2 {
		report()
	}
	pendingAtClose := p.Pending()
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	for range n / 2 {
		report()
	}
	startBroker(t, addr)
	eventually(t, "collector resubscribed", func() bool { return col.subscriptions() >= 2 })
	advanceUntil(t, fake, "reconnection", p.Connected)
	eventually(t, "queue drained", func() bool { return p.Pending() == 0 })
	// A PUBACK means the broker has it; the copy to the subscriber may still
	// be on its way.
	unique := func() int {
		ids := map[string]bool{}
		for _, m := range col.on("/alerts/robbery") {
			var r ReportPayload
			_ = json.Unmarshal(m.payload, &r)
			ids[r.ID] = true
		}
		return len(ids)
	}
	deadline := time.Now().Add(waitFor)
	for unique() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}

	got := col.reports(t, "/alerts/robbery")
	seen := map[string]bool{}
	last := map[string]int{} // incident → last version seen for the first time
	for _, r := range got {
		if seen[r.ID] {
			continue
		}
		seen[r.ID] = true
		if r.Version != last[r.Incident]+1 {
			t.Errorf("%s: first copy of v%d after v%d (reorder or gap)", r.Incident, r.Version, last[r.Incident])
		}
		last[r.Incident] = r.Version
	}
	lost := 0
	for _, id := range sent {
		if !seen[id] {
			lost++
			t.Errorf("report %s never received", id)
		}
	}
	resent := 0
	fails.Range(func(any, any) bool { resent++; return true })
	t.Logf("sent %d, received %d, unique %d, duplicates %d, lost %d (pending when the broker closed: %d, reports with a failed attempt: %d)",
		len(sent), len(got), len(seen), len(got)-len(seen), lost, pendingAtClose, resent)
	if lost != 0 {
		t.Fatalf("%d reports lost", lost)
	}
}

func TestInputStateCoalesces(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	topics := NewTopics("", testHall.ID)
	col := collect(t, b.URL(), topics.Input("smoke-1"))
	p, err := New(testConfig(b.URL(), "hg-inputs"), testHall, Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := func(edges uint64) engine.InputState {
		return engine.InputState{ID: "smoke-1", Kind: config.KindSmoke, Active: edges%2 == 1, State: "idle", Since: t0, Edges: edges}
	}
	edgesOf := func(s string) uint64 {
		var got InputPayload
		_ = json.Unmarshal([]byte(s), &got)
		return got.Edges
	}

	// Before the connection: 100 updates, one publish.
	for i := range 100 {
		p.Input(in(uint64(i + 1)))
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	eventually(t, "input state", func() bool { return len(col.on("/inputs/smoke-1")) > 0 })
	if got := col.payloads("/inputs/smoke-1"); len(got) != 1 || edgesOf(got[0]) != 100 {
		t.Fatalf("published %d values before settling (%v), want only the last", len(got), got)
	}

	// Connected: 100 rapid updates, the retained value ends as the last.
	for i := range 100 {
		p.Input(in(uint64(101 + i)))
	}
	eventually(t, "retained input is the last", func() bool { return edgesOf(retainedOn(t, b.URL(), topics.Input("smoke-1"))) == 200 })
	eventually(t, "subscriber got the last", func() bool {
		got := col.payloads("/inputs/smoke-1")
		return edgesOf(got[len(got)-1]) == 200
	})
	t.Logf("200 updates, %d publishes", len(col.on("/inputs/smoke-1")))
}

// TestSilentInputsPublishNothing: a panic button (or a generic input that
// raises a silent playbook) never has a retained state a hall screen could
// show (§4.3: robbery is silent), and a stale one left by an older version
// is cleared on connection.
func TestSilentInputsPublishNothing(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	topics := NewTopics("", testHall.ID)
	stale := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("stale").SetProtocolVersion(4))
	if err := wait(stale.Connect(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := wait(stale.Publish(topics.Input("panic-1"), 1, true, `{"id":"panic-1","active":true,"edges":7}`), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	stale.Disconnect(50)

	col := collect(t, b.URL(), topics.Under("inputs/#"))
	p := startPublisher(t, testConfig(b.URL(), "hg-silent"), Options{SilentInputs: []string{"panic-1", "duress-1"}})
	for i := range 5 {
		p.Input(engine.InputState{ID: "panic-1", Kind: config.KindPanic, Active: i%2 == 0, State: "active", Since: t0, Edges: uint64(i + 1)})
		p.Input(engine.InputState{ID: "panic-2", Kind: config.KindPanic, Active: i%2 == 0, State: "active", Since: t0, Edges: uint64(i + 1)})
		p.Input(engine.InputState{ID: "duress-1", Kind: config.KindGeneric, Active: i%2 == 0, State: "active", Since: t0, Edges: uint64(i + 1)})
	}
	p.Input(engine.InputState{ID: "smoke-1", Kind: config.KindSmoke, State: "idle", Since: t0, Edges: 1})
	eventually(t, "smoke input published", func() bool { return len(col.on("/inputs/smoke-1")) > 0 })
	eventually(t, "stale panic state cleared", func() bool { return retainedOn(t, b.URL(), topics.Input("panic-1")) == "" })
	for _, id := range []string{"panic-1", "panic-2", "duress-1"} {
		if got := retainedOn(t, b.URL(), topics.Input(id)); got != "" {
			t.Errorf("retained on inputs/%s: %s", id, got)
		}
		for _, m := range col.on("/inputs/" + id) {
			if len(m.payload) > 0 && !strings.Contains(string(m.payload), `"edges":7`) {
				t.Errorf("published on inputs/%s: %s", id, m.payload)
			}
		}
	}
}

func TestConditions(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	topics := NewTopics("", testHall.ID)
	col := collect(t, b.URL(), topics.Under("events/#"))
	p := startPublisher(t, testConfig(b.URL(), "hg-cond"), Options{})
	eventually(t, "connection", p.Connected)

	stuck := engine.Condition{Class: engine.ClassTrouble, Kind: "stuck", Input: "panic-2", Active: true, Time: t0}
	tamper := engine.Condition{Class: engine.ClassTamper, Kind: "loop_open", Input: "door-1", Active: true, Time: t0}
	p.Condition(stuck)
	p.Condition(tamper)
	stuck.Active = false
	p.Condition(stuck)

	eventually(t, "3 events", func() bool { return len(col.on("/events/condition")) == 3 })
	var active []bool
	for _, m := range col.on("/events/condition") {
		var c ConditionPayload
		if err := json.Unmarshal(m.payload, &c); err != nil {
			t.Fatal(err)
		}
		active = append(active, c.Active)
	}
	if !slices.Equal(active, []bool{true, true, false}) {
		t.Errorf("events active = %v", active)
	}
	eventually(t, "retained conditions", func() bool {
		var cs []ConditionPayload
		_ = json.Unmarshal([]byte(retainedOn(t, b.URL(), topics.Conditions())), &cs)
		return len(cs) == 1 && cs[0].Kind == "loop_open" && cs[0].Input == "door-1"
	})
}

func TestOnAckOncePerReport(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	var mu sync.Mutex
	acks := map[string][]time.Time{}
	p := startPublisher(t, testConfig(b.URL(), "hg-ack"), Options{OnAck: func(r engine.Report, at time.Time) {
		mu.Lock()
		acks[r.ID] = append(acks[r.ID], at)
		mu.Unlock()
	}})
	eventually(t, "connection", p.Connected)

	before := time.Now()
	var ids []string
	for v := 1; v <= 20; v++ {
		r := sampleReport("inc-ack", v)
		ids = append(ids, r.ID)
		p.Report(r)
	}
	eventually(t, "20 acks", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acks) == 20
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if len(acks[id]) != 1 {
			t.Errorf("%s: OnAck called %d times", id, len(acks[id]))
			continue
		}
		if acks[id][0].Before(before) {
			t.Errorf("%s: acked at %v, before the report was made (%v)", id, acks[id][0], before)
		}
	}
}

func TestSubscribeResubscribesOnReconnect(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	topics := NewTopics("", testHall.ID)
	o := paho.NewClientOptions().AddBroker(b.URL()).SetClientID("center").SetProtocolVersion(4).SetAutoReconnect(false)
	center := paho.NewClient(o)
	if err := wait(center.Connect(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	defer center.Disconnect(50)
	// A retained command: every (re)subscription gets it, and ignores it.
	if err := wait(center.Publish(topics.Command("stale"), 1, true, "old"), 5*time.Second); err != nil {
		t.Fatal(err)
	}

	fake := clock.NewFake(t0)
	p := startPublisher(t, testConfig(b.URL(), "hg-cmd"), Options{Clock: fake})
	eventually(t, "connection", p.Connected)
	got := make(chan string, 8)
	// Connected: Subscribe subscribes at once and returns after the SUBACK.
	if err := p.Subscribe("cmd/+", func(topic string, payload []byte) { got <- topic + " " + string(payload) }); err != nil {
		t.Fatal(err)
	}
	send := func(verb, body string) string {
		t.Helper()
		if err := wait(center.Publish(topics.Command(verb), 1, false, body), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-got:
			return s
		case <-time.After(waitFor):
			t.Fatalf("command %s not delivered", verb)
			return ""
		}
	}
	if s := send("ack", `{"incident":"inc-1"}`); s != `cmd/ack {"incident":"inc-1"}` {
		t.Fatalf("handler got %q", s)
	}

	b.Disconnect("hg-cmd")
	eventually(t, "disconnect seen", func() bool { return !p.Connected() })
	advanceUntil(t, fake, "reconnection", p.Connected)
	// The SUBSCRIBE went out before the connection counted as up, but the
	// broker may still take the center's publish first: a command sent in
	// that instant is lost (as is one sent while disconnected), so retry.
	eventually(t, "command after reconnect", func() bool {
		if !p.Connected() { // a failed resubscribe reconnects: let its back-off pass
			fake.Advance(time.Minute)
			return false
		}
		if err := wait(center.Publish(topics.Command("resolve"), 1, false, "x"), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-got:
			if s != "cmd/resolve x" { // the retained cmd/stale must not come
				t.Fatalf("after reconnect the handler got %q", s)
			}
			return true
		case <-time.After(100 * time.Millisecond):
			return false
		}
	})
}

func TestCloseReportsUndelivered(t *testing.T) {
	var mu sync.Mutex
	var calls int
	p := startPublisher(t, testConfig("tcp://"+freeAddr(t), "hg-undelivered"), Options{OnFail: func(engine.Report, error) {
		mu.Lock()
		calls++
		mu.Unlock()
	}})
	p.Report(sampleReport("inc-x", 1))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := p.Close(ctx)
	if !errors.Is(err, ErrUndelivered) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want ErrUndelivered and the deadline", err)
	}
	if err2 := p.Close(context.Background()); err2 != err {
		t.Errorf("second Close = %v, want %v", err2, err)
	}
	if err := p.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close = %v", err)
	}
	if err := p.Subscribe("cmd/+", func(string, []byte) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close = %v", err)
	}
	p.Report(sampleReport("inc-x", 2))
	if p.Pending() != 2 {
		t.Errorf("Pending = %d after a report after Close, want 2 (kept, not dropped)", p.Pending())
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 0 {
		t.Errorf("OnFail called %d times for reports never attempted", calls)
	}
}

func TestNewRejects(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		broker string
		tls    config.TLS
		config bool // errors.Is(err, ErrConfig); else a file error
	}{
		{"embedded is the daemon's to resolve", "embedded", config.TLS{}, true},
		{"no host", "tcp://", config.TLS{}, true},
		{"websocket", "ws://127.0.0.1:1883", config.TLS{}, true},
		{"tls files with plain tcp", "tcp://127.0.0.1:1883", config.TLS{CAFile: notPEM}, true},
		{"missing ca file", "ssl://broker:8883", config.TLS{CAFile: filepath.Join(dir, "nope.pem")}, false},
		{"ca file without PEM", "ssl://broker:8883", config.TLS{CAFile: notPEM}, true},
		{"cert without key", "mqtts://broker:8883", config.TLS{CertFile: notPEM}, true},
		{"unloadable client cert", "tls://broker:8883", config.TLS{CertFile: notPEM, KeyFile: notPEM}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(tc.broker, "x")
			cfg.TLS = tc.tls
			_, err := New(cfg, testHall, Options{})
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, ErrConfig) != tc.config {
				t.Fatalf("error %v: ErrConfig %v, want %v", err, !tc.config, tc.config)
			}
		})
	}
	if _, err := New(testConfig("mqtts://broker:8883", "x"), testHall, Options{}); err != nil {
		t.Errorf("TLS with system roots: %v", err)
	}
	// The defaults are config.Load's: a config without them is refused.
	for name, unset := range map[string]func(*config.MQTT){
		"client_id":       func(c *config.MQTT) { c.ClientID = "" },
		"keepalive":       func(c *config.MQTT) { c.Keepalive = 0 },
		"connect_timeout": func(c *config.MQTT) { c.ConnectTimeout = 0 },
		"write_timeout":   func(c *config.MQTT) { c.WriteTimeout = 0 },
		"max_reconnect":   func(c *config.MQTT) { c.MaxReconnect = 0 },
	} {
		cfg := testConfig("tcp://127.0.0.1:1883", "x")
		unset(&cfg)
		if _, err := New(cfg, testHall, Options{}); !errors.Is(err, ErrConfig) {
			t.Errorf("no %s: err %v, want ErrConfig", name, err)
		}
	}
}
