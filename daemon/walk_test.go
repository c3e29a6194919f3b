package daemon_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hallguard/hallguard/daemon"
)

// With commands.auth: none, anyone on the branch LAN can publish a
// command: walk_start, which takes inputs out of service, is refused, and
// the inputs stay live.
func TestWalkStartRefusedWhenCommandsAreUnauthenticated(t *testing.T) {
	r := start(t)
	replies := make(chan daemon.Reply, 4)
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + r.d.BrokerAddr()).SetClientID("lan-attacker"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(50)
	tok := c.Subscribe("hallguard/t-hall/cmd/reply", 1, func(_ paho.Client, m paho.Message) {
		var rep daemon.Reply
		if json.Unmarshal(m.Payload(), &rep) == nil {
			replies <- rep
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	// The daemon's command subscription may not be up yet when Run is
	// ready: send again until a reply comes.
	deadline := time.After(20 * time.Second)
	for n := 1; ; n++ {
		id := fmt.Sprintf("walk-%d", n)
		body := `{"id":"` + id + `","by":"intruder","action":"walk_start","inputs":["panic-1","call-1"],"ts":"` + time.Now().UTC().Format(time.RFC3339) + `"}`
		if tok := c.Publish("hallguard/t-hall/cmd/drill", 1, false, body); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
		select {
		case rep := <-replies:
			if !strings.HasPrefix(rep.ID, "walk-") || rep.Reason != "not_allowed" || !strings.Contains(rep.Result, "authenticated") {
				t.Fatalf("reply %+v, want walk_start refused as not_allowed", rep)
			}
			goto refused
		case <-time.After(500 * time.Millisecond):
		case <-deadline:
			t.Fatal("no reply to walk_start")
		}
	}
refused:
	r.sim.Input("call-1").Press()
	r.eventually("a fire from the call point", func() bool {
		for _, inc := range r.d.Engine().Incidents() {
			if inc.Playbook == "fire" && !inc.Drill && !inc.Test {
				return true
			}
		}
		return false
	})
}
