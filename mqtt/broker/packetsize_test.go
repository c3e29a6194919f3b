package broker

import (
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// TestOversizePublishIsRefused: a publish larger than MaxPacketSize never
// reaches a subscriber (the daemon): the broker drops the connection that
// sent it instead of reading it into memory and forwarding it.
func TestOversizePublishIsRefused(t *testing.T) {
	b, err := Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := make(chan int, 4)
	sub := connect(t, b.URL(), "sub")
	if tok := sub.Subscribe("h/cmd/+", 1, func(_ paho.Client, m paho.Message) { got <- len(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	pub := connect(t, b.URL(), "attacker")
	pub.Publish("h/cmd/ack", 1, false, strings.Repeat("x", MaxPacketSize+1)).WaitTimeout(5 * time.Second)
	small := connect(t, b.URL(), "center")
	if tok := small.Publish("h/cmd/ack", 1, false, "{}"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case n := <-got:
		if n != 2 {
			t.Fatalf("the subscriber got a %d-byte publish; the oversize one must never arrive", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the small publish after it did not arrive")
	}
}
