//go:build security

package test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

const demoRoot = "hallguard/demo-hall"

// attacker connects to broker as a local process would: anonymous, with
// the client id it likes, optionally a user and password it guessed.
func attacker(broker, clientID, user, pass string) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker("tcp://" + broker).SetClientID(clientID).SetProtocolVersion(4).
		SetAutoReconnect(false).SetCleanSession(true).SetConnectTimeout(5 * time.Second)
	if user != "" {
		o.SetUsername(user).SetPassword(pass)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	return c, nil
}

// retainedOn subscribes a fresh client to topic and returns the retained
// payload the broker holds there ("" when none): it subscribes to topic,
// then to the hall's status (always retained), and waits for the status;
// retained messages of the first subscription come before it.
func retainedOn(t *testing.T, broker, topic string) string {
	t.Helper()
	c, err := attacker(broker, fmt.Sprintf("reader-%d", time.Now().UnixNano()), "", "")
	if err != nil {
		t.Fatalf("reader connect: %v", err)
	}
	defer c.Disconnect(100)
	got := make(chan paho.Message, 64)
	h := func(_ paho.Client, m paho.Message) { got <- m }
	if tok := c.Subscribe(topic, 1, h); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", topic, tok.Error())
	}
	var last string
	// mochi sometimes loses the retained message of a SUBSCRIBE sent while
	// it still sends another one's: subscribe to status again until it
	// comes (each SUBSCRIBE sends the retained message again).
	for try := 0; try < 10; try++ {
		if tok := c.Subscribe(demoRoot+"/status", 1, h); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe status: %v", tok.Error())
		}
		timeout := time.After(time.Second)
	recv:
		for {
			select {
			case m := <-got:
				if m.Topic() == demoRoot+"/status" {
					return last
				}
				if m.Retained() {
					last = string(m.Payload())
				}
			case <-timeout:
				break recv
			}
		}
	}
	t.Fatalf("status never came (reading %s)", topic)
	return ""
}

func TestSecurityForgedResolvedOnIncident(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml")
	sub := subscribe(t, d.mqtt, demoRoot+"/incidents/+")
	d.sim("press", "panic-teller-1")
	m := sub.wait(t, 10*time.Second, func(m message) bool { return strings.Contains(string(m.Payload), `"playbook":"robbery"`) })
	var rep report
	if err := json.Unmarshal(m.Payload, &rep); err != nil {
		t.Fatal(err)
	}

	forged := strings.Replace(string(m.Payload), `"state":"active"`, `"state":"resolved"`, 1)
	forged = strings.Replace(forged, `"event":"raised"`, `"event":"resolved"`, 1)
	var outcomes []string
	for _, who := range []struct{ name, user, pass string }{
		{"anonymous", "", ""},
		{"daemon's user, guessed password", "hallguard", "hallguard"},
	} {
		c, err := attacker(d.mqtt, "evil-"+strings.ReplaceAll(who.name, " ", "-")[:9], who.user, who.pass)
		if err != nil {
			outcomes = append(outcomes, who.name+": connect refused")
			continue
		}
		tok := c.Publish(m.Topic, 1, true, forged)
		tok.WaitTimeout(5 * time.Second)
		outcomes = append(outcomes, fmt.Sprintf("%s: publish error %v", who.name, tok.Error()))
		c.Disconnect(100)
	}
	held := retainedOn(t, d.mqtt, m.Topic)
	if strings.Contains(held, `"state":"resolved"`) || !strings.Contains(held, `"id":"`+rep.ID+`"`) {
		t.Fatalf("the broker holds a forged report on %s: %.200s", m.Topic, held)
	}
	attack(t, "retained state=resolved on incidents/<robbery> (anonymous; daemon user with a guessed password)",
		strings.Join(outcomes, "; ")+"; retained report unchanged ("+rep.ID+" active)")
}

func TestSecurityClientIDTakeover(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml")
	status := subscribe(t, d.mqtt, demoRoot+"/status")
	status.wait(t, 5*time.Second, func(m message) bool { return string(m.Payload) == "online" })

	c, err := attacker(d.mqtt, "hallguard-demo-hall", "", "")
	if err == nil {
		time.Sleep(500 * time.Millisecond)
		c.Disconnect(100)
		t.Fatal("an anonymous client connected with the daemon's client id")
	}
	// Did the daemon lose its connection? It would log it, and its will
	// would set status offline.
	marker := subscribe(t, d.mqtt, demoRoot+"/status")
	marker.wait(t, 5*time.Second, func(m message) bool { return true })
	for _, m := range status.all() {
		if string(m.Payload) == "offline" {
			t.Fatalf("the daemon went offline after the attempt:\n%s", d.logs)
		}
	}
	if strings.Contains(d.logs.String(), "connection lost") {
		t.Fatalf("the daemon lost its connection:\n%s", d.logs)
	}
	attack(t, "CONNECT with the daemon's client id hallguard-demo-hall (anonymous)",
		fmt.Sprintf("refused (%v); daemon stayed connected, status online", err))
}

func TestSecurityAnonymousReadsSilentInput(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml")
	sub := subscribe(t, d.mqtt, demoRoot+"/alerts/robbery")
	d.sim("press", "panic-teller-1")
	sub.wait(t, 10*time.Second, func(m message) bool { return true })
	d.sim("release", "panic-teller-1")
	// The state of a non-silent input is published after the press; wait
	// for one, so the daemon has had its chance to publish the panic input.
	d.sim("pulse", "beam-entrance")
	beam := subscribe(t, d.mqtt, demoRoot+"/inputs/beam-entrance")
	beam.wait(t, 10*time.Second, func(m message) bool {
		return strings.Contains(string(m.Payload), `"edges":`) && !strings.Contains(string(m.Payload), `"edges":0`)
	})

	var seen []string
	for _, topic := range []string{demoRoot + "/inputs/panic-teller-1", demoRoot + "/inputs/#", "homeassistant/#"} {
		got := retainedOn(t, d.mqtt, topic)
		if strings.Contains(got, "panic-teller-1") {
			t.Fatalf("an anonymous reader of %s gets the panic button's retained state: %s", topic, got)
		}
		seen = append(seen, fmt.Sprintf("%s: %d bytes", topic, len(got)))
	}
	// retainedOn keeps only the last retained message per filter; check
	// every retained message under inputs/ too.
	c, err := attacker(d.mqtt, "reader-all", "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(100)
	msgs := make(chan paho.Message, 256)
	c.Subscribe(demoRoot+"/inputs/#", 1, func(_ paho.Client, m paho.Message) { msgs <- m }).WaitTimeout(5 * time.Second)
	n := 0
	for done, try := false, 0; !done; try++ {
		if try == 10 {
			t.Fatal("status never came")
		}
		c.Subscribe(demoRoot+"/status", 1, func(_ paho.Client, m paho.Message) { msgs <- m }).WaitTimeout(5 * time.Second)
		timeout := time.After(time.Second)
	recv:
		for !done {
			select {
			case m := <-msgs:
				if m.Topic() == demoRoot+"/status" {
					done = true
					continue
				}
				if m.Retained() {
					n++
				}
				if strings.Contains(m.Topic(), "panic") && len(m.Payload()) > 0 {
					t.Fatalf("retained %s: %s", m.Topic(), m.Payload())
				}
			case <-timeout:
				break recv
			}
		}
	}
	attack(t, "anonymous SUBSCRIBE inputs/panic-teller-1, inputs/#, homeassistant/# after a press",
		fmt.Sprintf("no panic input state retained (%s; %d other inputs)", strings.Join(seen, ", "), n))
}
