package daemon_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hallguard/hallguard/daemon"
	"github.com/hallguard/hallguard/mqtt/command"
)

// center is an MQTT client on the daemon's embedded broker that collects
// the replies on cmd/reply.
type center struct {
	c       paho.Client
	replies chan daemon.Reply
}

func newCenter(t *testing.T, r *running) *center {
	t.Helper()
	ce := &center{replies: make(chan daemon.Reply, 16)}
	ce.c = paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + r.d.BrokerAddr()).SetClientID("center-" + t.Name()))
	if tok := ce.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { ce.c.Disconnect(50) })
	tok := ce.c.Subscribe("hallguard/t-hall/cmd/reply", 1, func(_ paho.Client, m paho.Message) {
		var rep daemon.Reply
		if json.Unmarshal(m.Payload(), &rep) == nil {
			ce.replies <- rep
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return ce
}

// send publishes a command and returns its reply. Like the center, it
// sends the same command again when no reply comes: READY does not wait for
// the daemon's command subscription (the broker may be down at start), so a
// command published just after READY can reach a broker on which nobody
// subscribes yet, and is gone (a clean session). The same signed copy is
// safe to resend: a copy that was handled is refused as a replay.
func (ce *center) send(t *testing.T, verb string, payload []byte) daemon.Reply {
	t.Helper()
	for try := 0; try < 4; try++ {
		if tok := ce.c.Publish("hallguard/t-hall/cmd/"+verb, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
		select {
		case rep := <-ce.replies:
			return rep
		case <-time.After(5 * time.Second):
		}
	}
	t.Fatal("no reply to 4 copies")
	return daemon.Reply{}
}

// TestReplayRefusedAfterRestart: a signed command accepted before a
// restart is refused as a replay after it, within its window, because the
// nonce set is rebuilt from the journal's command records.
func TestReplayRefusedAfterRestart(t *testing.T) {
	dir := t.TempDir()
	key := []byte("a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90")
	if err := os.WriteFile(filepath.Join(dir, "command.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := strings.Replace(hallYAML, "commands: {auth: none}", "commands: {auth: hmac, key_file: command.key}", 1)
	r := startHall(t, fromFile(dir), withYAML(yaml))
	p, err := command.Sign(command.HMAC(key), "t-hall", "hallguard/t-hall/cmd/trigger",
		command.Message{ID: "c-trigger", Playbook: "illness", By: "center-op"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rep := newCenter(t, r).send(t, "trigger", p); rep.Result != "ok" {
		t.Fatalf("first delivery: %+v", rep)
	}
	r.stop()

	r = startHall(t, fromFile(dir), withYAML(yaml))
	if rep := newCenter(t, r).send(t, "trigger", p); rep.Reason != "replay" {
		t.Fatalf("the same command after a restart: %+v, want refused as a replay", rep)
	}
}

// TestSimulatedBackendReachesTheCenter: a daemon on the sim backend
// watches no real input; the center must see that as trouble.
func TestSimulatedBackendReachesTheCenter(t *testing.T) {
	r := startHall(t)
	r.conditions().wait("simulated_backend raised", func(p string) bool {
		return strings.Contains(p, `"kind":"simulated_backend"`) && strings.Contains(p, `"active":true`)
	}, 5*time.Second)
	if v := r.metrics(); !strings.Contains(v, `hallguard_condition_active{class="trouble",kind="simulated_backend"} 1`) {
		t.Errorf("no simulated_backend in the metrics")
	}
}

// TestPasswordFileIsRelativeToTheConfig: mqtt.password_file is taken from
// the config's folder, as commands.key_file is, whatever the daemon's
// working directory.
func TestPasswordFileIsRelativeToTheConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mqtt-password"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := strings.Replace(hallYAML, `mqtt: {broker: embedded, listen: "127.0.0.1:0"}`,
		`mqtt: {broker: embedded, listen: "127.0.0.1:0", username: t-hall, password_file: mqtt-password}`, 1)
	startHall(t, fromFile(dir), withYAML(yaml)) // fails unless the file is found next to the config
}

// TestReloadWithANewKeyNeedsRestart: a key rotated in place (same path,
// new contents) is not taken by a reload, so the reload must say so rather
// than answer ok while the old key keeps checking commands.
func TestReloadWithANewKeyNeedsRestart(t *testing.T) {
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "command.key")
	if err := os.WriteFile(keyPath, []byte("a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := strings.Replace(hallYAML, "commands: {auth: none}", "commands: {auth: hmac, key_file: command.key}", 1)
	r := startHall(t, fromFile(dir), withYAML(yaml))
	if err := r.d.Reload(); err != nil {
		t.Fatalf("reload of the same config: %v", err)
	}
	if err := os.WriteFile(keyPath, []byte("ffffffffffffffffffffffffffffffff00000000000000000000000000000000"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.d.Reload(); !errors.Is(err, daemon.ErrNeedsRestart) {
		t.Fatalf("reload after the key changed: %v, want ErrNeedsRestart", err)
	}
}
