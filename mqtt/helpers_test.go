package mqtt

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/mqtt/broker"
)

var testHall = config.Hall{ID: "main-st", Name: "营业厅", Location: "Main St. 1"}

// t0 is the fake clocks' start, and the sample report's time.
var t0 = time.Date(2026, 3, 1, 7, 45, 12, 123000000, time.UTC)

const waitFor = 10 * time.Second // deadline of every poll

func startBroker(t *testing.T, addr string) *broker.Broker {
	t.Helper()
	b, err := broker.Start(addr, nil)
	if err != nil {
		t.Fatalf("broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// freeAddr returns a loopback address no one listens on (for a broker that
// starts later).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func testConfig(url, clientID string) config.MQTT {
	return config.MQTT{
		Broker:         url,
		ClientID:       clientID,
		Keepalive:      config.Duration(30 * time.Second),
		ConnectTimeout: config.Duration(2 * time.Second),
		WriteTimeout:   config.Duration(5 * time.Second),
		MaxReconnect:   config.Duration(time.Second),
	}
}

func startPublisher(t *testing.T, cfg config.MQTT, opts Options) *Publisher {
	t.Helper()
	p, err := New(cfg, testHall, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	return p
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// advanceUntil moves the fake clock on, a reconnect back-off at a time,
// until cond holds.
func advanceUntil(t *testing.T, fake *clock.Fake, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		fake.Advance(time.Second)
		time.Sleep(5 * time.Millisecond)
	}
}

type received struct {
	topic    string
	payload  []byte
	retained bool
}

// collector is a subscriber like the center's: it reconnects and
// resubscribes by itself, and records what arrives.
type collector struct {
	client paho.Client

	mu   sync.Mutex
	msgs []received
	subs int // subscriptions acknowledged, one per connection
}

func collect(t *testing.T, url, filter string) *collector {
	t.Helper()
	c := &collector{}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("collector-%p", c)).
		SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(true).
		SetMaxReconnectInterval(50 * time.Millisecond).SetConnectTimeout(time.Second).
		SetOnConnectHandler(func(cl paho.Client) {
			tok := cl.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
				c.mu.Lock()
				c.msgs = append(c.msgs, received{m.Topic(), append([]byte(nil), m.Payload()...), m.Retained()})
				c.mu.Unlock()
			})
			if tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
				c.mu.Lock()
				c.subs++
				c.mu.Unlock()
			}
		})
	c.client = paho.NewClient(o)
	if err := wait(c.client.Connect(), 5*time.Second); err != nil {
		t.Fatalf("collector connect: %v", err)
	}
	t.Cleanup(func() { c.client.Disconnect(100) })
	eventually(t, "collector subscription", func() bool { return c.subscriptions() >= 1 })
	return c
}

func (c *collector) subscriptions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.subs
}

// on returns the messages whose topic ends with suffix.
func (c *collector) on(suffix string) []received {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []received
	for _, m := range c.msgs {
		if strings.HasSuffix(m.topic, suffix) {
			out = append(out, m)
		}
	}
	return out
}

func (c *collector) payloads(suffix string) []string {
	var out []string
	for _, m := range c.on(suffix) {
		out = append(out, string(m.payload))
	}
	return out
}

func (c *collector) reports(t *testing.T, suffix string) []ReportPayload {
	t.Helper()
	var out []ReportPayload
	for _, m := range c.on(suffix) {
		var r ReportPayload
		if err := json.Unmarshal(m.payload, &r); err != nil {
			t.Fatalf("%s: %v: %s", m.topic, err, m.payload)
		}
		out = append(out, r)
	}
	return out
}

// retainedOn returns the retained message on topic, as a fresh subscriber
// gets it ("" when there is none).
func retainedOn(t *testing.T, url, topic string) string {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("peek-%d", time.Now().UnixNano())).
		SetProtocolVersion(4).SetAutoReconnect(false)
	c := paho.NewClient(o)
	if err := wait(c.Connect(), 5*time.Second); err != nil {
		t.Fatalf("peek connect: %v", err)
	}
	defer c.Disconnect(50)
	got := make(chan string, 1)
	if err := wait(c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
		if m.Retained() {
			select {
			case got <- string(m.Payload()):
			default:
			}
		}
	}), 5*time.Second); err != nil {
		t.Fatalf("peek subscribe: %v", err)
	}
	select {
	case s := <-got:
		return s
	case <-time.After(300 * time.Millisecond): // retained messages follow the SUBACK at once
		return ""
	}
}

// sampleReport is version v of a robbery incident.
func sampleReport(incident string, v int) engine.Report {
	return engine.Report{
		ID: fmt.Sprintf("%s.v%d", incident, v), Incident: incident, Seq: uint64(v), Version: v,
		Event: engine.EventRaised, Playbook: "robbery", Section: "§4.3(a)", Variant: config.VariantArmed,
		Origin: engine.OriginButton, Source: "panic-teller-1", State: engine.StateActive, Silent: true,
		Hall: testHall, OccurredAt: t0, Type: config.Text{ZH: "抢劫", EN: "robbery"},
		Measures: []engine.Measure{{At: t0, Kind: "output", Text: "police-link on", Section: "§4.3(a)2", By: "hallguard"}},
		Steps: []engine.StepState{
			{ID: "secure_cash_take_cover", Section: "§4.3(a)1", Text: config.Text{ZH: "保持镇静", EN: "Stay calm, lock the safe, take cover."}},
			{ID: "call_110_report_manager", Section: "§4.3(a)2", Text: config.Text{ZH: "报警", EN: "Call 110 and report to the center manager."}},
		},
		Presses: 1, Inputs: []string{"panic-teller-1"}, Created: t0, Trigger: t0,
	}
}
