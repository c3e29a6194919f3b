package mqtt

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// SendCommand publishes payload on <root>/cmd/<verb> at QoS 1 and returns
// the daemon's answer on <root>/cmd/reply whose "id" is id. It is the
// center's side of the command protocol, used by `hallguard cmd`.
func SendCommand(ctx context.Context, brokerURL, root, verb, id string, payload []byte) ([]byte, error) {
	topics := Topics{root: root}
	replies := make(chan []byte, 8)
	c, err := connectOnce(brokerURL, fmt.Sprintf("hallguard-cmd-%d", time.Now().UnixNano()))
	if err != nil {
		return nil, err
	}
	defer c.Disconnect(100)
	tok := c.Subscribe(topics.Command("reply"), 1, func(_ paho.Client, m paho.Message) {
		var r struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(m.Payload(), &r) == nil && r.ID == id {
			select {
			case replies <- append([]byte(nil), m.Payload()...):
			default:
			}
		}
	})
	if err := wait(tok, 10*time.Second); err != nil {
		return nil, fmt.Errorf("mqtt: subscribe replies: %w", err)
	}
	if err := wait(c.Publish(topics.Command(verb), 1, false, payload), 10*time.Second); err != nil {
		return nil, fmt.Errorf("mqtt: publish command: %w", err)
	}
	select {
	case r := <-replies:
		return r, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("mqtt: no reply to command %s: %w", id, ctx.Err())
	}
}

// RetainedMessage is one retained message read by Retained.
type RetainedMessage struct {
	Topic   string
	Payload []byte
}

// Retained connects to brokerURL with a client id of its own, subscribes to
// filter and returns the retained messages the broker holds for it: those
// that came before no message came for a second, or before ctx ended.
// `hallguard journal verify -anchor TOPIC` reads the journal heads with it.
func Retained(ctx context.Context, brokerURL, filter string) ([]RetainedMessage, error) {
	got := make(chan RetainedMessage, 1024)
	c, err := connectOnce(brokerURL, watchID())
	if err != nil {
		return nil, err
	}
	defer c.Disconnect(100)
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		if m.Retained() && len(m.Payload()) > 0 {
			select {
			case got <- RetainedMessage{Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...)}:
			default:
			}
		}
	})
	if err := wait(tok, 10*time.Second); err != nil {
		return nil, fmt.Errorf("mqtt: subscribe %s: %w", filter, err)
	}
	var out []RetainedMessage
	for {
		select {
		case m := <-got:
			out = append(out, m)
		case <-time.After(time.Second):
			return out, nil
		case <-ctx.Done():
			return out, nil
		}
	}
}

// connectOnce connects a client with id to brokerURL for one exchange (a
// clean session, no reconnect), as the CLI's tools need; the caller
// disconnects it.
func connectOnce(brokerURL, id string) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker(brokerURL).SetProtocolVersion(4).SetClientID(id).
		SetAutoReconnect(false).SetCleanSession(true).SetConnectTimeout(10 * time.Second)
	c := paho.NewClient(o)
	if err := wait(c.Connect(), 10*time.Second); err != nil {
		return nil, fmt.Errorf("mqtt: connect %s: %w", redacted(brokerURL), err)
	}
	return c, nil
}

// redacted is a broker URL fit for messages: a password in it (the center's
// tools may give their user there) replaced by "xxxxx".
func redacted(brokerURL string) string {
	if u, err := url.Parse(brokerURL); err == nil {
		return u.Redacted()
	}
	return "(broker URL)"
}
