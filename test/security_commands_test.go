//go:build security

package test

// Attacks on the command path (issue #12 §3), against the real binary.
//
// The signing here is the test's own (crypto/hmac, crypto/ed25519), not
// mqtt/command's, so that the same file also runs against an older build:
// with HALLGUARD_SECURITY_LEGACY=1 it signs in the format of d3b536a
// (verb LF sorted object) and shows each attack succeeding there.

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hallguard/hallguard/test/hallproc"
)

var legacySigning = os.Getenv("HALLGUARD_SECURITY_LEGACY") == "1"

// signer makes a "sig" value over the canonical text.
type signer func(canonical []byte) string

func hmacSigner(key []byte) signer {
	return func(c []byte) string {
		h := hmac.New(sha256.New, key)
		h.Write(c)
		return hex.EncodeToString(h.Sum(nil))
	}
}

func demoHMAC(t *testing.T) signer {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "configs", "demo-command.key"))
	if err != nil {
		t.Fatal(err)
	}
	return hmacSigner([]byte(strings.TrimSpace(string(b))))
}

// fields fills in what every command carries.
func fields(obj map[string]any) map[string]any {
	if _, ok := obj["ts"]; !ok {
		obj["ts"] = time.Now().UTC().Format(time.RFC3339Nano)
	}
	if _, ok := obj["nonce"]; !ok {
		var b [12]byte
		_, _ = rand.Read(b[:])
		obj["nonce"] = hex.EncodeToString(b[:])
	}
	return obj
}

// canonicalOf is the signed text for an object whose JSON is raw (kept as
// sent, so that an attacker's duplicate or case-folded keys are signed as
// they stand).
func canonicalOf(hall, topic, raw string) []byte {
	var obj map[string]json.RawMessage
	_ = json.Unmarshal([]byte(raw), &obj) // json.Marshal of the map sorts the keys
	sorted, _ := json.Marshal(obj)
	if legacySigning {
		verb := topic[strings.LastIndex(topic, "/")+1:]
		return []byte(verb + "\n" + string(sorted))
	}
	return []byte("hallguard-command-v2\n" + hall + "\n" + topic + "\n" + string(sorted))
}

// signed returns obj as a signed payload for hall on topic.
func signed(s signer, hall, topic string, obj map[string]any) []byte {
	b, _ := json.Marshal(fields(obj))
	return withSig(string(b), s(canonicalOf(hall, topic, string(b))))
}

func withSig(raw, sig string) []byte {
	return []byte(strings.TrimSuffix(raw, "}") + `,"sig":"` + sig + `"}`)
}

// publishRaw is send on a full command topic.
func publishRaw(t *testing.T, sub *subscriber, topic, id string, payload []byte) reply {
	t.Helper()
	root, verb, _ := strings.Cut(topic, "/cmd/")
	return send(t, sub, root, verb, id, payload)
}

func activeIncidents(t *testing.T, d *daemonProc, playbook string) string {
	t.Helper()
	v, _ := hallproc.Sample(d.metrics(), `hallguard_incidents_active{drill="false",playbook="`+playbook+`"}`)
	return v
}

// TestSecurityCrossHallReplay: halls A and B share a key (one key for the
// fleet, or one stolen). A command captured on A's topic, replayed on B's,
// must do nothing at B.
func TestSecurityCrossHallReplay(t *testing.T) {
	cfgB := demoConfigCopy(t, func(s string) string { return strings.Replace(s, "id: demo-hall", "id: hall-b", 1) })
	b := startDaemon(t, cfgB)
	sub := subscribe(t, b.mqtt, "hallguard/hall-b/#")
	captured := signed(demoHMAC(t), "demo-hall", demoRoot+"/cmd/trigger", map[string]any{"id": "x-hall", "by": "center-op", "playbook": "illness"})
	r := publishRaw(t, sub, "hallguard/hall-b/cmd/trigger", "x-hall", captured)
	if r.Result == "ok" || activeIncidents(t, b, "illness") != "0" {
		t.Fatalf("hall A's command acted at hall B: %+v, illness active %s", r, activeIncidents(t, b, "illness"))
	}
	attack(t, "hall A's signed trigger replayed on hall B's topic (shared key)", r.Result)
}

// TestSecurityReplayAfterRestart: a captured command, replayed after the
// daemon restarts, within its time window.
func TestSecurityReplayAfterRestart(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml")
	sub := subscribe(t, d.mqtt, demoRoot+"/#")
	p := signed(demoHMAC(t), "demo-hall", demoRoot+"/cmd/trigger", map[string]any{"id": "r-1", "by": "center-op", "playbook": "illness"})
	if r := publishRaw(t, sub, demoRoot+"/cmd/trigger", "r-1", p); r.Result != "ok" {
		t.Fatalf("the genuine command: %+v", r)
	}
	state := d.stateDir
	d.stop()
	d2 := startDaemonOn(t, "configs/demo.yaml", state)
	sub2 := subscribe(t, d2.mqtt, demoRoot+"/#")
	r := publishRaw(t, sub2, demoRoot+"/cmd/trigger", "r-1", p)
	if r.Reason != "replay" {
		t.Fatalf("the same command after a restart: %+v, want refused as a replay", r)
	}
	attack(t, "a captured trigger replayed after a restart", r.Result)
}

// TestSecurityJunkFloodKeepsValidCommands: 6000 junk messages on cmd/ with
// 10 signed commands among them. Every signed one must be carried out; the
// junk must be counted and must not grow the journal without bound.
func TestSecurityJunkFloodKeepsValidCommands(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml")
	sub := subscribe(t, d.mqtt, demoRoot+"/cmd/reply")
	key := demoHMAC(t)
	open := publishRaw(t, sub, demoRoot+"/cmd/trigger", "f-open", signed(key, "demo-hall", demoRoot+"/cmd/trigger", map[string]any{"id": "f-open", "by": "center-op", "playbook": "illness"}))
	if open.Result != "ok" {
		t.Fatalf("trigger: %+v", open)
	}
	bytesBefore, _ := hallproc.Sample(d.metrics(), "hallguard_journal_bytes")
	attacker := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + d.mqtt).SetClientID("attacker").SetProtocolVersion(4))
	if tok := attacker.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer attacker.Disconnect(50)
	alerts := subscribe(t, d.mqtt, demoRoot+"/alerts/robbery")
	const junk, valid = 6000, 10
	var last paho.Token
	var pressed time.Time
	for i := 0; i < junk; i++ {
		if i == junk/2 { // an alarm in the middle of the flood must still be reported
			pressed = time.Now()
			d.sim("press", "panic-teller-1")
		}
		p := fmt.Sprintf(`{"id":"junk-%d","by":"attacker","incident":"x","nonce":"%d","sig":"%064d"}`, i, i, i)
		if i%3 == 0 {
			p = strings.Repeat("\x00junk", 50)
		}
		last = attacker.Publish(demoRoot+"/cmd/report", 1, false, p)
		if i%(junk/valid) == junk/valid/2 {
			n := i / (junk / valid)
			other := fmt.Sprintf("update %d", n)
			sub.c.Publish(demoRoot+"/cmd/report", 1, false, signed(key, "demo-hall", demoRoot+"/cmd/report",
				map[string]any{"id": "f-valid-" + strconv.Itoa(n), "by": "center-op", "incident": open.Incident, "other": other}))
		}
	}
	last.WaitTimeout(60 * time.Second)
	alarm := alerts.wait(t, 30*time.Second, func(m message) bool { return true })
	ok := 0
	waitFor(t, 60*time.Second, func() bool {
		ok = 0
		for _, m := range sub.all() {
			var r reply
			if json.Unmarshal(m.Payload, &r) == nil && strings.HasPrefix(r.ID, "f-valid-") && r.Result == "ok" {
				ok++
			}
		}
		return ok == valid
	}, fmt.Sprintf("all %d signed commands carried out", valid), d.logs)
	text := d.metrics()
	dropped, _ := hallproc.Sample(text, `hallguard_commands_dropped_total{reason="rate_limit"}`)
	backlog, _ := hallproc.Sample(text, `hallguard_commands_dropped_total{reason="backlog"}`)
	bytesAfter, _ := hallproc.Sample(text, "hallguard_journal_bytes")
	b0, _ := strconv.ParseFloat(bytesBefore, 64)
	b1, _ := strconv.ParseFloat(bytesAfter, 64)
	if b1-b0 > 1<<20 {
		t.Errorf("the junk grew the journal by %.0f bytes (from %.0f)", b1-b0, b0)
	}
	// The junk neither journalled nor answered is counted, as rate_limit
	// or, when the intake is full, as backlog: which of the two depends on
	// how fast this machine drains the intake, so only their sum is held.
	d1, _ := strconv.ParseFloat(dropped, 64)
	d2, _ := strconv.ParseFloat(backlog, 64)
	if d1+d2 == 0 {
		t.Errorf("hallguard_commands_dropped_total: rate_limit %q, backlog %q: the junk past the rate limit is not counted", dropped, backlog)
	}
	attack(t, fmt.Sprintf("%d junk messages on cmd/ around %d signed commands", junk, valid),
		fmt.Sprintf("%d/%d signed carried out; robbery pressed mid-flood reported after %.0f ms; journal +%.0f bytes; unjournalled rejections counted: %s rate_limit, %s backlog",
			ok, valid, float64(alarm.At.Sub(pressed).Microseconds())/1000, b1-b0, dropped, backlog))
}

// TestSecurityIncidentFieldOverride: a signed resolve whose object says
// "incident": the illness, and "INCIDENT": the robbery. Whoever reads the
// signed text sees the illness; encoding/json folds case and would resolve
// the robbery.
func TestSecurityIncidentFieldOverride(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml")
	sub := subscribe(t, d.mqtt, demoRoot+"/#")
	key := demoHMAC(t)
	d.sim("press", "panic-teller-1")
	rob := sub.reportOn(t, 10*time.Second, demoRoot+"/alerts/robbery")
	ill := publishRaw(t, sub, demoRoot+"/cmd/trigger", "o-ill", signed(key, "demo-hall", demoRoot+"/cmd/trigger", map[string]any{"id": "o-ill", "by": "center-op", "playbook": "illness"}))
	raw := fmt.Sprintf(`{"id":"o-res","by":"center-op","incident":%q,"INCIDENT":%q,"ts":%q,"nonce":"n-override"}`,
		ill.Incident, rob.Incident, time.Now().UTC().Format(time.RFC3339Nano))
	r := publishRaw(t, sub, demoRoot+"/cmd/resolve", "o-res", withSig(raw, key(canonicalOf("demo-hall", demoRoot+"/cmd/resolve", raw))))
	if r.Result == "ok" || activeIncidents(t, d, "robbery") != "1" {
		t.Fatalf("the override acted: %+v, robbery active %s", r, activeIncidents(t, d, "robbery"))
	}
	attack(t, `signed resolve with "incident": illness, "INCIDENT": robbery`, r.Result)
}

// TestSecurityTrailingData: a genuine signed command with data after the
// object.
func TestSecurityTrailingData(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml")
	sub := subscribe(t, d.mqtt, demoRoot+"/#")
	p := signed(demoHMAC(t), "demo-hall", demoRoot+"/cmd/trigger", map[string]any{"id": "t-1", "by": "center-op", "playbook": "illness"})
	r := publishRaw(t, sub, demoRoot+"/cmd/trigger", "t-1", append(p, ']'))
	if r.Reason != "bad_payload" || activeIncidents(t, d, "illness") != "0" {
		t.Fatalf("trailing data accepted: %+v, illness active %s", r, activeIncidents(t, d, "illness"))
	}
	attack(t, "a signed trigger followed by ]", r.Result)
}

// TestSecurityOversizePublishMemory: three 60 MB publishes on cmd/ must not
// take the daemon's memory (its embedded broker refuses the packets).
func TestSecurityOversizePublishMemory(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml")
	rss := func() float64 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.p.Cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
		t.Fatal("no VmHWM")
		return 0
	}
	before := rss()
	big := make([]byte, 60<<20)
	for i := 0; i < 3; i++ {
		c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + d.mqtt).SetClientID(fmt.Sprintf("big-%d", i)).SetProtocolVersion(4).SetAutoReconnect(false).SetWriteTimeout(30 * time.Second))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		c.Publish(demoRoot+"/cmd/ack", 1, false, big).WaitTimeout(30 * time.Second)
		c.Disconnect(50)
	}
	time.Sleep(time.Second) // let a forwarded publish, if any, reach the daemon's handler
	after := rss()
	if after-before > 64 {
		t.Fatalf("peak RSS grew from %.0f MiB to %.0f MiB", before, after)
	}
	resp, err := http.Get("http://" + d.http + "/healthz")
	if err != nil {
		t.Fatalf("daemon gone after the attack: %v", err)
	}
	health, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(health), `"ready":true`) {
		t.Fatalf("daemon not healthy after the attack: %s", health)
	}
	attack(t, "three 60 MB publishes on cmd/ack", fmt.Sprintf("peak RSS %.0f -> %.0f MiB, daemon healthy", before, after))
}

// TestSecurityHMACForgedWhereEd25519: the hall holds only the center's
// public key. An attacker who reads it (it is not secret) makes an HMAC
// keyed with it: the algorithm-confusion forgery.
func TestSecurityHMACForgedWhereEd25519(t *testing.T) {
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "center.key")
	var pubPEM, privPEM []byte
	if out, err := exec.Command(hallguardBin(t), "keygen", "-type", "ed25519", "-out", keyPath).CombinedOutput(); err != nil {
		// An older build has no keygen: make the pair here, so that the
		// attack itself is what is tried.
		t.Logf("hallguard keygen: %v: %s", err, out)
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		pk, _ := x509.MarshalPKCS8PrivateKey(priv)
		pb, _ := x509.MarshalPKIXPublicKey(pub)
		privPEM, pubPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pb})
		_ = os.WriteFile(keyPath, privPEM, 0o600)
		_ = os.WriteFile(keyPath+".pub", pubPEM, 0o644)
	}
	pubPEM, _ = os.ReadFile(keyPath + ".pub")
	privPEM, _ = os.ReadFile(keyPath)
	cfg := demoConfigCopy(t, func(s string) string {
		s = strings.Replace(s, "auth: hmac", "auth: ed25519", 1)
		return strings.Replace(s, "key_file: "+filepath.Join(repoRoot(t), "configs", "demo-command.key"), "key_file: "+keyPath+".pub", 1)
	})
	d := startDaemon(t, cfg)
	sub := subscribe(t, d.mqtt, demoRoot+"/#")
	forged := signed(hmacSigner(pubPEM), "demo-hall", demoRoot+"/cmd/trigger", map[string]any{"id": "e-forged", "by": "attacker", "playbook": "illness"})
	r := publishRaw(t, sub, demoRoot+"/cmd/trigger", "e-forged", forged)
	if r.Result == "ok" || activeIncidents(t, d, "illness") != "0" {
		t.Fatalf("the HMAC forgery acted: %+v", r)
	}
	blk, _ := pem.Decode(privPEM)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	center := func(c []byte) string { return hex.EncodeToString(ed25519.Sign(k.(ed25519.PrivateKey), c)) }
	genuine := signed(center, "demo-hall", demoRoot+"/cmd/trigger", map[string]any{"id": "e-genuine", "by": "center-op", "playbook": "illness"})
	if g := publishRaw(t, sub, demoRoot+"/cmd/trigger", "e-genuine", genuine); g.Result != "ok" {
		t.Fatalf("the center's Ed25519-signed command: %+v", g)
	}
	attack(t, "HMAC keyed with the center's Ed25519 public key", r.Result+"; the center's own signature: ok")
}
