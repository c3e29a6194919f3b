package mqtt

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// testIntake admits payloads that start with "valid" and refuses the rest.
type testIntake struct {
	mu       sync.Mutex
	handled  []string
	refused  int
	release  chan struct{} // Handle waits on it
	onHandle func(string)
}

func (ti *testIntake) Admit(_ string, payload []byte) (any, error) {
	if strings.HasPrefix(string(payload), "valid") {
		return string(payload), nil
	}
	return nil, errors.New("junk")
}

func (ti *testIntake) Handle(_ string, v any) {
	if ti.release != nil {
		<-ti.release
	}
	ti.mu.Lock()
	ti.handled = append(ti.handled, v.(string))
	ti.mu.Unlock()
	if ti.onHandle != nil {
		ti.onHandle(v.(string))
	}
}

func (ti *testIntake) Refuse(string, []byte, error) {
	ti.mu.Lock()
	ti.refused++
	ti.mu.Unlock()
}

func (ti *testIntake) got() ([]string, int) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	return append([]string(nil), ti.handled...), ti.refused
}

// subscribeHeld subscribes a testIntake to cmd/+ on p; its Handle waits
// until release is called (at the latest when the test ends).
func subscribeHeld(t *testing.T, p *Publisher) (*testIntake, func()) {
	t.Helper()
	ti := &testIntake{release: make(chan struct{})}
	var once sync.Once
	release := func() { once.Do(func() { close(ti.release) }) }
	t.Cleanup(release)
	if err := p.SubscribeIntake("cmd/+", ti); err != nil {
		t.Fatal(err)
	}
	return ti, release
}

// connectClient connects a plain MQTT 3.1.1 client (the center, an
// attacker) with client id id to url, disconnected when the test ends.
func connectClient(t *testing.T, url, id string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetProtocolVersion(4).SetAutoReconnect(false))
	if err := wait(c.Connect(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

// TestIntakeNeverDropsAdmittedForJunk: thousands of junk messages on cmd/
// while the handler is busy must not crowd out a single admitted command;
// refused ones past the backlog are counted, never silently lost.
func TestIntakeNeverDropsAdmittedForJunk(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	topics := NewTopics("hallguard", testHall.ID)
	p := startPublisher(t, testConfig(b.URL(), "hg-flood"), Options{})
	eventually(t, "connection", p.Connected)
	ti, release := subscribeHeld(t, p)
	c := connectClient(t, b.URL(), "attacker")
	const junk, valid = 3000, 10
	for i := 0; i < junk; i++ {
		c.Publish(topics.Command("ack"), 1, false, fmt.Sprintf("junk %d", i))
		if i%(junk/valid) == 0 {
			c.Publish(topics.Command("ack"), 1, false, fmt.Sprintf("valid %d", i))
		}
	}
	if err := wait(c.Publish(topics.Command("ack"), 1, false, "junk last"), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every junk message seen", func() bool {
		_, r := ti.got()
		return uint64(r)+p.Counters().DroppedCommands == junk+1
	})
	release()
	eventually(t, "every valid command handled", func() bool {
		h, _ := ti.got()
		return len(h) == valid
	})
	h, r := ti.got()
	t.Logf("junk %d: refused and answered %d, dropped and counted %d; valid handled %d of %d", junk+1, r, p.Counters().DroppedCommands, len(h), valid)
}

// ackWatch is a broker hook that records when the broker receives the
// subscriber's PUBACK for each message it delivered.
type ackWatch struct {
	mochi.HookBase
	mu    sync.Mutex
	acked map[string]bool // client id -> any PUBACK seen
}

func (h *ackWatch) ID() string { return "ack-watch" }
func (h *ackWatch) Provides(b byte) bool {
	return b == mochi.OnPacketRead || b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}
func (h *ackWatch) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }
func (h *ackWatch) OnACLCheck(*mochi.Client, string, bool) bool              { return true }
func (h *ackWatch) OnPacketRead(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type == packets.Puback {
		h.mu.Lock()
		h.acked[cl.ID] = true
		h.mu.Unlock()
	}
	return pk, nil
}
func (h *ackWatch) seen(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.acked[id]
}

// TestCommandAckedOnlyOnceHandled: the broker gets the PUBACK of a command
// only after the handler has carried it out, so a command is never
// acknowledged and then lost in a queue.
func TestCommandAckedOnlyOnceHandled(t *testing.T) {
	srv := mochi.New(&mochi.Options{InlineClient: false})
	w := &ackWatch{acked: map[string]bool{}}
	if err := srv.AddHook(w, nil); err != nil {
		t.Fatal(err)
	}
	tcp := listeners.NewTCP(listeners.Config{Type: listeners.TypeTCP, ID: "t", Address: "127.0.0.1:0"})
	if err := srv.AddListener(tcp); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	url := "tcp://" + tcp.Address()
	p := startPublisher(t, testConfig(url, "hg-ack"), Options{})
	eventually(t, "connection", p.Connected)
	_, release := subscribeHeld(t, p)
	c := connectClient(t, url, "center")
	if err := wait(c.Publish(NewTopics("hallguard", testHall.ID).Command("ack"), 1, false, "valid 1"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// The broker has the command; the handler is held. Give paho every
	// chance to acknowledge early: it must not.
	time.Sleep(300 * time.Millisecond)
	if w.seen("hg-ack") {
		t.Fatal("the broker got the PUBACK before the command was handled")
	}
	release()
	eventually(t, "PUBACK after handling", func() bool { return w.seen("hg-ack") })
}
