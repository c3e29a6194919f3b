package main

// The harness's MQTT clients (paho, like the daemon): subscribers that
// timestamp every message on arrival, and the bare publisher of the floor.

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hallguard/hallguard/mqtt/command"
	"github.com/hallguard/hallguard/test/hallproc"
)

var clientSeq atomic.Int64

func connect(brokerURL, name string, lost func()) (paho.Client, error) {
	opts := paho.NewClientOptions().AddBroker(brokerURL).
		SetClientID(fmt.Sprintf("bench-%s-%d-%d", name, time.Now().UnixNano()%1e9, clientSeq.Add(1))).
		SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetKeepAlive(60 * time.Second).SetConnectTimeout(5 * time.Second).SetWriteTimeout(10 * time.Second)
	if lost != nil {
		opts.SetConnectionLostHandler(func(paho.Client, error) { lost() })
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("mqtt connect %s: %v", brokerURL, tok.Error())
	}
	return c, nil
}

// msg is one received message with its arrival time.
type msg = hallproc.Message

// inbox collects the messages of one subscription.
type inbox struct{ *hallproc.Inbox }

// take removes and returns the first message for which ok is true, waiting
// up to d for it.
func (b inbox) take(d time.Duration, ok func(msg) bool) (msg, error) {
	m, found := b.Take(d, ok)
	if !found {
		return msg{}, fmt.Errorf("no matching message within %s (%d others held)", d, b.Len())
	}
	return m, nil
}

// subscribe subscribes c to filter at QoS 1 into a new inbox.
func subscribe(c paho.Client, filter string) (*inbox, error) {
	in, err := hallproc.Subscribe(c, filter, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return &inbox{in}, nil
}

func publish(c paho.Client, topic string, payload []byte) error {
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("publish %s: %v", topic, tok.Error())
	}
	return nil
}

// report is the part of a hallguard report the harness reads.
type report = hallproc.Report

func parseReport(m msg) (report, bool) {
	var r report
	return r, json.Unmarshal(m.Payload, &r) == nil && r.ID != ""
}

// sendCommand signs m with key for hall's cmd/<verb> and publishes it there,
// as the center would.
func sendCommand(c paho.Client, key command.HMAC, hall, verb string, m command.Message) error {
	topic := "hallguard/" + hall + "/cmd/" + verb
	pl, err := command.Sign(key, hall, topic, m, time.Now())
	if err != nil {
		return err
	}
	return publish(c, topic, pl)
}

// waitResolved waits up to 10 s on alerts for incident's resolved report.
func waitResolved(alerts *inbox, incident string) error {
	_, err := alerts.take(10*time.Second, func(m msg) bool {
		r, ok := parseReport(m)
		return ok && r.Incident == incident && r.Event == "resolved"
	})
	return err
}
