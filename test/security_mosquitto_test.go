//go:build security

package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/test/hallproc"
)

// aclMosquitto is Debian's mosquitto on configs/mosquitto/hall-broker.conf
// and hallguard.acl, with users demo-hall, other-hall and center.
type aclMosquitto struct {
	hall, center string // listener addresses
}

var aclPasswords = map[string]string{"demo-hall": "demo-hall-pw", "other-hall": "other-hall-pw", "center": "center-pw"}

func startACLMosquitto(t *testing.T) *aclMosquitto {
	t.Helper()
	dir := mosquittoDir(t)
	passwd := filepath.Join(dir, "passwd")
	for user, pw := range aclPasswords {
		args := []string{"-b", passwd, user, pw}
		if _, err := os.Stat(passwd); err != nil {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command("mosquitto_passwd", args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
	}
	if err := os.Chmod(passwd, 0o644); err != nil { // readable by the mosquitto user
		t.Fatal(err)
	}
	acl, err := os.ReadFile(filepath.Join(repoRoot(t), "configs", "mosquitto", "hallguard.acl"))
	if err != nil {
		t.Fatal(err)
	}
	aclPath := filepath.Join(dir, "hallguard.acl")
	if err := os.WriteFile(aclPath, acl, 0o644); err != nil {
		t.Fatal(err)
	}
	m := startMosquitto(t, dir, "hall-broker.conf", 2, func(l string) string {
		switch {
		case strings.HasPrefix(l, "password_file "):
			return "password_file " + passwd
		case strings.HasPrefix(l, "acl_file "):
			return "acl_file " + aclPath
		}
		return l
	})
	return &aclMosquitto{hall: m.addrs[0], center: m.addrs[1]}
}

// mqttAs connects to addr as user (anonymous when "") and collects every
// message on the filter, if any.
func mqttAs(t *testing.T, addr, clientID, user, filter string) (*subscriber, error) {
	t.Helper()
	c, err := attacker(addr, clientID, user, aclPasswords[user])
	if err != nil {
		return nil, fmt.Errorf("connect as %q: %w", user, err)
	}
	t.Cleanup(func() { c.Disconnect(100) })
	s := &subscriber{c: c, Inbox: hallproc.NewInbox()}
	if filter != "" {
		if s.Inbox, err = hallproc.Subscribe(c, filter, 10*time.Second); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func TestSecurityMosquittoACL(t *testing.T) {
	m := startACLMosquitto(t)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "mqtt-password")
	if err := os.WriteFile(pwFile, []byte(aclPasswords["demo-hall"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := demoConfigCopy(t, func(s string) string {
		return strings.Replace(s, "  broker: embedded\n  listen: 127.0.0.1:1883\n",
			"  broker: tcp://"+m.hall+"\n  username: demo-hall\n  password_file: "+pwFile+"\n", 1)
	})
	center, err := mqttAs(t, m.center, "center-dispatch", "center", "hallguard/#")
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemonOn(t, cfg, filepath.Join(dir, "state"))

	// Everything the hall publishes and reads gets through.
	center.wait(t, 10*time.Second, func(m message) bool { return m.Topic == demoRoot+"/status" && string(m.Payload) == "online" })
	d.sim("press", "panic-teller-1")
	center.wait(t, 10*time.Second, func(m message) bool { return m.Topic == demoRoot+"/alerts/robbery" })
	inc := center.wait(t, 10*time.Second, func(m message) bool { return strings.HasPrefix(m.Topic, demoRoot+"/incidents/") })
	d.sim("pulse", "beam-entrance")
	center.wait(t, 10*time.Second, func(m message) bool { return m.Topic == demoRoot+"/inputs/beam-entrance" })
	center.wait(t, 10*time.Second, func(m message) bool { return m.Topic == demoRoot+"/queue" })
	center.wait(t, 10*time.Second, func(m message) bool { return m.Topic == demoRoot+"/conditions" })
	center.wait(t, 10*time.Second, func(m message) bool { return m.Topic == demoRoot+"/journal/head" })
	if tok := center.c.Publish(demoRoot+"/cmd/ack", 1, false, `{"id":"acl-probe"}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("center command: %v", tok.Error())
	}
	center.wait(t, 10*time.Second, func(m message) bool { return m.Topic == demoRoot+"/cmd/reply" }) // the refusal of the unsigned probe

	// forged: what must not reach the center, published before a marker
	// the publisher may send; the marker's arrival proves the forged one
	// would have arrived by then.
	forged := strings.Replace(string(inc.Payload), `"state":"active"`, `"state":"resolved"`, 1)
	// mosquitto 2.0 answers a denied PUBLISH with a PUBACK carrying a
	// reason code, which paho (MQTT 3.1.1) takes as a broken connection:
	// the marker goes on a fresh connection of the same user, after the
	// forged PUBLISH was answered (mosquitto queues an allowed message to
	// its subscribers before it answers).
	n := 0
	try := func(who *subscriber, user, addr, topic, marker string) {
		t.Helper()
		who.c.Publish(topic, 1, true, forged).WaitTimeout(5 * time.Second)
		n++
		from, err := mqttAs(t, addr, fmt.Sprintf("%s-marker-%d", user, n), user, "")
		if err != nil {
			t.Fatal(err)
		}
		if tok := from.c.Publish(marker, 1, false, "marker"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("marker: %v", tok.Error())
		}
		center.wait(t, 10*time.Second, func(m message) bool { return m.Topic == marker })
		for _, got := range center.all() {
			if got.Topic == topic && string(got.Payload) == forged {
				t.Fatalf("a forged message on %s reached the center", topic)
			}
		}
	}
	other, err := mqttAs(t, m.hall, "hallguard-demo-hall", "other-hall", "") // also the demo hall's client id
	if err != nil {
		t.Fatal(err)
	}
	try(other, "other-hall", m.hall, inc.Topic, "hallguard/other-hall/status")
	try(other, "other-hall", m.hall, demoRoot+"/status", "hallguard/other-hall/status")
	centerPub, err := mqttAs(t, m.center, "center-tool", "center", "")
	if err != nil {
		t.Fatal(err)
	}
	try(centerPub, "center", m.center, inc.Topic, "hallguard/other-hall/cmd/ack")
	try(centerPub, "center", m.center, demoRoot+"/cmd/reply", "hallguard/other-hall/cmd/ack")
	for _, addr := range []string{m.hall, m.center} {
		if _, err := mqttAs(t, addr, "anon", "", ""); err == nil {
			t.Fatalf("an anonymous client connected to %s", addr)
		}
	}
	if strings.Contains(d.logs.String(), "connection lost") {
		t.Fatalf("the hall lost its connection (client id taken over?):\n%s", d.logs)
	}
	attack(t, "mosquitto + hallguard.acl: other hall and center write demo-hall's incidents/, status, cmd/reply; other hall takes demo-hall's client id; anonymous connect",
		"nothing forged reached the center; hall stayed connected; anonymous refused; hall's status, alerts, incidents, inputs, queue, conditions, journal/head and cmd/reply all delivered")
}
