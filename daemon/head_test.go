package daemon_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hallguard/hallguard/daemon/journal"
	"github.com/hallguard/hallguard/devices/sim"
)

// TestJournalHeadSignedRetainedAndCurrent: the daemon publishes its chain
// head on journal/head, retained and signed with the box's Ed25519 key, and
// a later head follows the journal as it grows (issue #12 §5).
func TestJournalHeadSignedRetainedAndCurrent(t *testing.T) {
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "head.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startHall(t, inDir(filepath.Join(dir, "state")), withExtra("journal: {head_interval: 1s, head_key_file: "+keyFile+"}\n")).d

	heads := make(chan journal.HeadMessage, 64)
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + d.BrokerAddr()).SetClientID("center-head"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(50)
	c.Subscribe("hallguard/t-hall/journal/head", 1, func(_ paho.Client, m paho.Message) {
		var h journal.HeadMessage
		if err := json.Unmarshal(m.Payload(), &h); err != nil {
			t.Errorf("journal/head %s: %v", m.Payload(), err)
		}
		heads <- h
	})
	verifier := journal.Ed25519HeadVerifier(pub)
	next := func() journal.HeadMessage {
		select {
		case h := <-heads:
			if err := verifier.Verify(h); err != nil {
				t.Fatalf("journal/head %+v: %v", h, err)
			}
			if h.Hall != "t-hall" || h.Alg != journal.HeadAlgEd25519 {
				t.Fatalf("journal/head %+v", h)
			}
			return h
		case <-time.After(10 * time.Second):
			t.Fatal("no journal/head")
		}
		return journal.HeadMessage{}
	}
	// The retained head may predate the config record's commit (the head
	// loop publishes at once at start); a head covering it follows within
	// a second of the commit.
	first := next()
	for first.Seq == 0 {
		first = next()
	}
	d.Backend().(*sim.Backend).Input("call-1").Press() // §4.4: fire, journalled
	for h := next(); ; h = next() {
		if h.Seq > first.Seq {
			break
		}
	}
}
