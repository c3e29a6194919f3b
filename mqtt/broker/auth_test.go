package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

const root = "hallguard/h1"

// authBroker is a broker with the daemon's password and the hall's ACL, as
// the daemon starts it.
func authBroker(t *testing.T) *Broker {
	t.Helper()
	b, err := Start("127.0.0.1:0", nil, WithAuth(Auth{
		Users:       map[string]string{"hallguard": "daemon-secret", "center": "center-secret"},
		Daemon:      "hallguard",
		ReservedIDs: []string{"hallguard-h1"},
		OthersWrite: []string{root + "/cmd/+"},
		OthersDeny:  []string{root + "/cmd/reply"},
		Anonymous:   true,
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func dial(url, id, user, pass string, will string) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetProtocolVersion(4).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	if user != "" {
		o.SetUsername(user).SetPassword(pass)
	}
	if will != "" {
		o.SetWill(will, "resolved", 1, true)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return nil, errors.New("connect timed out")
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	return c, nil
}

// delivered publishes payload on topic from c, then a marker on a topic c
// may write, and reports whether a subscriber on the daemon's side saw the
// first before the marker (one publisher's messages arrive in order).
var seq int

func delivered(t *testing.T, b *Broker, c paho.Client, topic string, retain bool) bool {
	t.Helper()
	seq++ // a client id of its own each time: mochi may drop a new session's messages while an old one with its id is still going
	daemon, err := dial(b.URL(), fmt.Sprintf("daemon-%d", seq), "hallguard", "daemon-secret", "")
	if err != nil {
		t.Fatalf("daemon connect: %v", err)
	}
	defer daemon.Disconnect(100)
	got := make(chan string, 16)
	if tok := daemon.Subscribe("#", 1, func(_ paho.Client, m paho.Message) { got <- m.Topic() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	tok := c.Publish(topic, 1, retain, "forged")
	accepted := tok.WaitTimeout(5*time.Second) && tok.Error() == nil // a refused PUBLISH closes the connection
	marker := root + "/cmd/marker"
	if accepted && c.IsConnectionOpen() {
		c.Publish(marker, 1, false, "m").WaitTimeout(2 * time.Second)
	} else { // the broker dropped it: send the marker from a fresh anonymous client
		m, err := dial(b.URL(), fmt.Sprintf("marker-%d", seq), "", "", "")
		if err != nil {
			t.Fatal(err)
		}
		defer m.Disconnect(100)
		m.Publish(marker, 1, false, "m").WaitTimeout(2 * time.Second)
	}
	for {
		select {
		case tp := <-got:
			if tp == topic {
				return true
			}
			if tp == marker {
				return false
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("marker never arrived (forged on %s accepted=%v)", topic, accepted)
		}
	}
}

func TestOnlyTheDaemonWritesHallTopics(t *testing.T) {
	b := authBroker(t)
	anon, err := dial(b.URL(), "anon", "", "", "")
	if err != nil {
		t.Fatalf("anonymous connect: %v", err)
	}
	defer anon.Disconnect(100)
	for _, topic := range []string{root + "/incidents/i1", root + "/status", root + "/inputs/smoke", root + "/alerts/robbery",
		root + "/journal/head", root + "/cmd/reply", "homeassistant/binary_sensor/x/config"} {
		c, err := dial(b.URL(), topic+"-center", "center", "center-secret", "")
		if err != nil {
			t.Fatalf("center connect: %v", err)
		}
		if delivered(t, b, c, topic, true) {
			t.Errorf("a center user wrote %s", topic)
		}
		c.Disconnect(100)
		a, err := dial(b.URL(), topic+"-anon", "", "", "")
		if err != nil {
			t.Fatal(err)
		}
		if delivered(t, b, a, topic, true) {
			t.Errorf("an anonymous client wrote %s", topic)
		}
		a.Disconnect(100)
	}
	if !delivered(t, b, anon, root+"/cmd/resolve", false) {
		t.Error("an anonymous client could not write cmd/resolve")
	}
}

func TestDaemonClientIDIsReserved(t *testing.T) {
	b := authBroker(t)
	daemon, err := dial(b.URL(), "hallguard-h1", "hallguard", "daemon-secret", "")
	if err != nil {
		t.Fatalf("daemon connect: %v", err)
	}
	defer daemon.Disconnect(100)
	for _, tc := range []struct{ name, user, pass string }{
		{"anonymous", "", ""},
		{"center user", "center", "center-secret"},
		{"daemon user, wrong password", "hallguard", "guess"},
	} {
		if c, err := dial(b.URL(), "hallguard-h1", tc.user, tc.pass, ""); err == nil {
			c.Disconnect(100)
			t.Errorf("%s took the daemon's client id", tc.name)
		}
	}
	time.Sleep(100 * time.Millisecond) // a takeover would have closed it by now
	if !daemon.IsConnectionOpen() {
		t.Fatal("the daemon was kicked off")
	}
}

func TestUnknownUserOrBadPasswordRefused(t *testing.T) {
	b := authBroker(t)
	for _, tc := range []struct{ user, pass string }{{"center", "x"}, {"nobody", "x"}, {"hallguard", ""}} {
		if c, err := dial(b.URL(), "c-"+tc.user, tc.user, tc.pass, ""); err == nil {
			c.Disconnect(100)
			t.Errorf("user %q with password %q connected", tc.user, tc.pass)
		}
	}
}

func TestWillOnHallTopicRefused(t *testing.T) {
	b := authBroker(t)
	if c, err := dial(b.URL(), "c-will", "center", "center-secret", root+"/incidents/i1"); err == nil {
		c.Disconnect(100)
		t.Error("a center user connected with a will on incidents/")
	}
	c, err := dial(b.URL(), "hallguard-h1", "hallguard", "daemon-secret", root+"/status")
	if err != nil {
		t.Fatalf("daemon with its will: %v", err)
	}
	c.Disconnect(100)
}

func TestPasswordFileMadeOnceAndPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.passwd")
	pw, err := EnsurePasswordFile(path, "hallguard")
	if err != nil {
		t.Fatal(err)
	}
	if len(pw) < 32 {
		t.Errorf("password %q is short", pw)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %o, want 600", fi.Mode().Perm())
	}
	again, err := EnsurePasswordFile(path, "hallguard")
	if err != nil || again != pw {
		t.Fatalf("second call: %q, %v; want the same password", again, err)
	}
	other, err := EnsurePasswordFile(path, "center")
	if err != nil || other == pw {
		t.Fatalf("adding a user: %q, %v", other, err)
	}
	users, err := LoadPasswordFile(path)
	if err != nil || users["hallguard"] != pw || users["center"] != other || len(users) != 2 {
		t.Fatalf("LoadPasswordFile: %v, %v", users, err)
	}
	if b, _ := os.ReadFile(path); strings.Count(string(b), "#") != 1 {
		t.Errorf("password file:\n%s\nwant one header line", b)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPasswordFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("a world-readable password file: %v, want an error naming it", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.passwd")
	if err := os.WriteFile(bad, []byte("# users\nhallguard:x\nnocolon\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPasswordFile(bad); err == nil || !strings.Contains(err.Error(), bad+":3") {
		t.Errorf("malformed line: %v, want an error naming %s:3", err, bad)
	}
}
