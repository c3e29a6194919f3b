package daemon_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hallguard/hallguard/daemon"
	"github.com/hallguard/hallguard/daemon/engine"
)

// With commands.auth: none, anyone on the branch LAN can publish a
// command: walk_start, which takes inputs out of service, is refused, and
// the inputs stay live.
func TestWalkStartRefusedWhenCommandsAreUnauthenticated(t *testing.T) {
	r := startHall(t)
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

// A walk test's hold-up incident is journalled as a test: after a restart
// it is not among the incidents waiting for a review (§3.4), and the
// metrics count it apart from real robberies.
func TestWalkTestIncidentIsNoRealIncidentAfterARestart(t *testing.T) {
	dir := t.TempDir()
	r := startHall(t, inDir(dir))
	eng := r.d.Engine()
	walk := engine.Command{Verb: engine.VerbDrill, Action: engine.WalkStart, Inputs: []string{"panic-1"}, By: "installer",
		Origin: engine.OriginCenter, Authenticated: true}
	if _, err := eng.Do(walk); err != nil {
		t.Fatal(err)
	}
	r.sim.Input("panic-1").Press()
	var test string
	r.eventually("the hold-up press as a test incident", func() bool {
		for _, inc := range eng.Incidents() {
			if inc.Test {
				test = inc.ID
			}
		}
		return test != ""
	})
	r.sim.Input("panic-1").Release()
	if !strings.Contains(r.metrics(), `hallguard_incidents_total{drill="true",origin="button",playbook="robbery"} 1`) {
		t.Errorf("the walk test's press is not counted apart from real robberies")
	}
	walk.Action = engine.WalkStop
	if _, err := eng.Do(walk); err != nil {
		t.Fatal(err)
	}
	r.eventually("the test incident journalled as resolved", func() bool {
		b, err := getBody("http://" + r.d.LocalAddr() + "/api/journal/export?kind=incident&incident=" + test)
		return err == nil && strings.Contains(b, `"event":"resolved"`)
	})
	r.stop()

	r = startHall(t, inDir(dir))
	rv := engine.Command{Verb: engine.VerbReview, Incident: test, By: "Wang", Origin: engine.OriginStaff,
		Review: &engine.Review{Cause: "a", Course: "b", Handling: "c", Problems: "d"}}
	if _, err := r.d.Engine().Do(rv); err == nil {
		t.Errorf("the walk test's incident %s was taken for a real one waiting for its review", test)
	}
}
