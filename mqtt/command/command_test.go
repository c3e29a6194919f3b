package command_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/mqtt/command"
)

var (
	key   = command.HMAC("0123456789abcdef0123456789abcdef")
	now   = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	hall  = "hall-a"
	ackAt = "hallguard/hall-a/cmd/ack"
)

func sign(t testing.TB, s command.Signer, hall, topic string, m command.Message, at time.Time) []byte {
	t.Helper()
	p, err := command.Sign(s, hall, topic, m, at)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVerify(t *testing.T) {
	good := func() []byte {
		return sign(t, key, hall, ackAt, command.Message{ID: "c1", Incident: "inc-1", By: "center-op-7"}, now)
	}
	cases := []struct {
		name    string
		verb    string
		topic   string
		payload func() []byte
		checker command.Checker
		want    error // nil: accepted
	}{
		{"valid", "ack", ackAt, good, key, nil},
		{"bad signature", "ack", ackAt, func() []byte { return bytes.Replace(good(), []byte("inc-1"), []byte("inc-2"), 1) }, key, command.ErrBadSignature},
		{"wrong key", "ack", ackAt, good, command.HMAC("another key, another hall, 32 b."), command.ErrBadSignature},
		{"signed for another verb", "resolve", "hallguard/hall-a/cmd/resolve", good, key, command.ErrBadSignature},
		{"expired", "ack", ackAt, func() []byte {
			return sign(t, key, hall, ackAt, command.Message{ID: "c2", Incident: "i", By: "x"}, now.Add(-3*time.Minute))
		}, key, command.ErrExpired},
		{"from the future", "ack", ackAt, func() []byte {
			return sign(t, key, hall, ackAt, command.Message{ID: "c3", Incident: "i", By: "x"}, now.Add(3*time.Minute))
		}, key, command.ErrExpired},
		{"unsigned", "ack", ackAt, func() []byte { return []byte(`{"id":"c4","by":"x","incident":"i"}`) }, key, command.ErrUnsigned},
		{"oversize", "ack", ackAt, func() []byte { return []byte(`{"id":"c5","by":"` + strings.Repeat("x", 5000) + `"}`) }, key, command.ErrTooLarge},
		{"not json", "ack", ackAt, func() []byte { return []byte(`ack inc-1`) }, key, command.ErrBadPayload},
		{"unknown field", "ack", ackAt, func() []byte { return []byte(`{"id":"c6","by":"x","rm":"-rf"}`) }, key, command.ErrBadPayload},
		{"no id", "ack", ackAt, func() []byte { return []byte(`{"by":"x"}`) }, key, command.ErrBadPayload},
		{"unknown verb", "launch", "hallguard/hall-a/cmd/launch", func() []byte { return []byte(`{"id":"c7","by":"x"}`) }, key, command.ErrUnknownVerb},
		{"unsigned accepted without a key", "ack", ackAt, func() []byte { return []byte(`{"id":"c8","by":"x","incident":"i"}`) }, nil, nil},
	}
	for _, c := range cases {
		v := &command.Verifier{Hall: hall, Checker: c.checker, Clock: clock.NewFake(now)}
		m, err := v.Verify(c.verb, c.topic, c.payload())
		if c.want == nil {
			if err != nil {
				t.Errorf("%s: rejected: %v", c.name, err)
			}
			if m.Authenticated != (c.checker != nil) {
				t.Errorf("%s: authenticated = %v", c.name, m.Authenticated)
			}
			continue
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
		if m.Authenticated {
			t.Errorf("%s: rejected command marked authenticated", c.name)
		}
	}
}

// TestSignatureBindsHallAndTopic: one key shared by two halls (or one
// center key for the fleet) must not let a command for hall A act at hall
// B, nor a command published under another prefix.
func TestSignatureBindsHallAndTopic(t *testing.T) {
	p := sign(t, key, "hall-a", "hallguard/hall-a/cmd/resolve", command.Message{ID: "c1", Incident: "inc-1", By: "op"}, now)
	for _, c := range []struct{ name, hall, topic string }{
		{"another hall, its own topic", "hall-b", "hallguard/hall-b/cmd/resolve"},
		{"another hall, same topic text", "hall-b", "hallguard/hall-a/cmd/resolve"},
		{"same hall, another prefix", "hall-a", "other/hall-a/cmd/resolve"},
	} {
		v := &command.Verifier{Hall: c.hall, Checker: key, Clock: clock.NewFake(now)}
		if _, err := v.Verify("resolve", c.topic, p); !errors.Is(err, command.ErrBadSignature) {
			t.Errorf("%s: err = %v, want bad signature", c.name, err)
		}
	}
	v := &command.Verifier{Hall: "hall-a", Checker: key, Clock: clock.NewFake(now)}
	if _, err := v.Verify("resolve", "hallguard/hall-a/cmd/resolve", p); err != nil {
		t.Fatalf("at its own hall and topic: %v", err)
	}
}

// TestStrictJSONFieldNames: a field name must match exactly. encoding/json
// folds case, so {"incident":"A","INCIDENT":"B"} would act on B though
// whoever read the signed text saw A.
func TestStrictJSONFieldNames(t *testing.T) {
	for _, c := range []struct{ name, payload string }{
		{"upper-case twin", `{"id":"c1","by":"op","incident":"inc-1","INCIDENT":"inc-2","nonce":"n1","ts":"2026-12-01T09:00:00Z"}`},
		{"mixed case", `{"id":"c1","by":"op","Incident":"inc-2","nonce":"n1","ts":"2026-12-01T09:00:00Z"}`},
		{"duplicate", `{"id":"c1","by":"op","incident":"inc-1","incident":"inc-2","nonce":"n1","ts":"2026-12-01T09:00:00Z"}`},
	} {
		// Signed as it stands, by someone holding the key: strictness, not
		// the signature, must refuse it.
		var obj map[string]any
		_ = json.Unmarshal([]byte(c.payload), &obj)
		sig := signRaw(t, key, hall, ackAt, c.payload)
		p := strings.TrimSuffix(c.payload, "}") + `,"sig":"` + sig + `"}`
		v := &command.Verifier{Hall: hall, Checker: key, Clock: clock.NewFake(now)}
		m, err := v.Verify("ack", ackAt, []byte(p))
		if !errors.Is(err, command.ErrBadPayload) {
			t.Errorf("%s: err = %v (incident %q), want bad payload", c.name, err, m.Incident)
		}
	}
}

// signRaw signs a payload as it stands, bypassing Canonical's own
// strictness, as a careless or hostile signer would.
func signRaw(t *testing.T, s command.Signer, hall, topic, payload string) string {
	t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(payload), &obj); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(obj) // sorted keys
	return s.Sign([]byte("hallguard-command-v2\n" + hall + "\n" + topic + "\n" + string(b)))
}

func TestTrailingDataIsRefused(t *testing.T) {
	good := sign(t, key, hall, ackAt, command.Message{ID: "c1", Incident: "inc-1", By: "op"}, now)
	for _, tail := range []string{"]", "}", `{"incident":"inc-2"}`, "x", "\x00"} {
		v := &command.Verifier{Hall: hall, Checker: key, Clock: clock.NewFake(now)}
		if _, err := v.Verify("ack", ackAt, append(bytes.Clone(good), tail...)); !errors.Is(err, command.ErrBadPayload) {
			t.Errorf("tail %q: err = %v, want bad payload", tail, err)
		}
	}
	v := &command.Verifier{Hall: hall, Checker: key, Clock: clock.NewFake(now)}
	if _, err := v.Verify("ack", ackAt, append(bytes.Clone(good), " \n"...)); err != nil {
		t.Errorf("trailing white space: %v", err)
	}
}

// TestEd25519: the center signs with its private key, the hall checks with
// the public key, and nothing made from the public key (an HMAC keyed with
// it, the algorithm-confusion forgery) passes.
func TestEd25519(t *testing.T) {
	priv, privPEM, pubPEM := newEd25519(t)
	pub, err := command.ParseEd25519Public(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	v := &command.Verifier{Hall: hall, Checker: pub, Clock: clock.NewFake(now)}
	good := sign(t, priv, hall, ackAt, command.Message{ID: "c1", Incident: "inc-1", By: "op"}, now)
	if m, err := v.Verify("ack", ackAt, good); err != nil || !m.Authenticated {
		t.Fatalf("center-signed command: %v", err)
	}
	for name, forger := range map[string]command.Signer{
		"hmac keyed with the public key PEM": command.HMAC(pubPEM),
		"hmac keyed with the raw public key": command.HMAC(pub),
		"another ed25519 key":                otherEd25519(t),
	} {
		p := sign(t, forger, hall, ackAt, command.Message{ID: "c2", Incident: "inc-1", By: "op"}, now)
		if _, err := v.Verify("ack", ackAt, p); !errors.Is(err, command.ErrBadSignature) {
			t.Errorf("%s: err = %v, want bad signature", name, err)
		}
	}
	if _, err := command.ParseEd25519Public(privPEM); !errors.Is(err, command.ErrKey) {
		t.Errorf("a private key as the hall's key: err = %v", err)
	}
}

// newEd25519 makes a key pair: the private key, parsed, and both PEMs.
func newEd25519(t *testing.T) (priv command.Ed25519Private, privPEM, pubPEM []byte) {
	t.Helper()
	privPEM, pubPEM, err := command.NewEd25519()
	if err != nil {
		t.Fatal(err)
	}
	priv, err = command.ParseEd25519Private(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	return priv, privPEM, pubPEM
}

func otherEd25519(t *testing.T) command.Signer {
	k, _, _ := newEd25519(t)
	return k
}

func TestParseHMAC(t *testing.T) {
	if _, err := command.ParseHMAC([]byte("0123456789abcdef0123456789abcde\n")); !errors.Is(err, command.ErrKey) {
		t.Errorf("31-byte key: err = %v, want ErrKey", err)
	}
	secret := "s3cr3t-s3cr3t-s3cr3t-s3cr3t"
	if _, err := command.ParseHMAC([]byte(secret)); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("short key error %v quotes the key or is nil", err)
	}
	k, err := command.NewHMAC()
	if err != nil {
		t.Fatal(err)
	}
	if h, err := command.ParseHMAC(k); err != nil || len(h) != 64 {
		t.Errorf("a generated key: %d bytes, %v", len(h), err)
	}
}

func TestReplayIsRejected(t *testing.T) {
	v := &command.Verifier{Hall: hall, Checker: key, Clock: clock.NewFake(now)}
	p := sign(t, key, hall, "hallguard/hall-a/cmd/resolve", command.Message{ID: "c1", Incident: "inc-1", By: "op"}, now)
	if _, err := v.Verify("resolve", "hallguard/hall-a/cmd/resolve", p); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify("resolve", "hallguard/hall-a/cmd/resolve", p); !errors.Is(err, command.ErrReplay) {
		t.Fatalf("second delivery: err = %v, want replay", err)
	}
	if got := command.Reason(command.ErrReplay); got != "replay" {
		t.Errorf("Reason = %q", got)
	}
}

// TestRememberedNonceIsAReplay: the nonces a restarted daemon reads back
// from its journal count as used.
func TestRememberedNonceIsAReplay(t *testing.T) {
	p := sign(t, key, hall, ackAt, command.Message{ID: "c1", Incident: "inc-1", By: "op", Nonce: "n-before-restart"}, now)
	v := &command.Verifier{Hall: hall, Checker: key, Clock: clock.NewFake(now.Add(30 * time.Second))}
	v.Remember("n-before-restart", now)
	if _, err := v.Verify("ack", ackAt, p); !errors.Is(err, command.ErrReplay) {
		t.Fatalf("err = %v, want replay", err)
	}
}

func TestCanonicalIgnoresKeyOrderAndSpace(t *testing.T) {
	a, err := command.Canonical("h", "p/h/cmd/ack", []byte(`{"by":"x", "id":"1","sig":"zz"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := command.Canonical("h", "p/h/cmd/ack", []byte(`{"id":"1","by":"x"}`))
	if string(a) != string(b) || string(a) != "hallguard-command-v2\nh\np/h/cmd/ack\n{\"by\":\"x\",\"id\":\"1\"}" {
		t.Errorf("canonical forms differ: %q vs %q", a, b)
	}
}

// Every label Reason gives, and the engine's Reason, is one of the one list
// of rejections.
func TestReasonsAreRejections(t *testing.T) {
	for _, err := range []error{command.ErrTooLarge, command.ErrBadPayload, command.ErrUnknownVerb, command.ErrUnsigned,
		command.ErrBadSignature, command.ErrExpired, command.ErrReplay, errors.New("other")} {
		if r := command.Reason(err); !slices.Contains(engine.Rejections, r) {
			t.Errorf("Reason(%v) = %q: not in engine.Rejections", err, r)
		}
	}
	for _, err := range []error{engine.ErrUnknownIncident, engine.ErrNotAllowed, engine.ErrUnknownVerb, engine.ErrBadCommand} {
		if r := engine.Reason(err); !slices.Contains(engine.Rejections, r) {
			t.Errorf("engine.Reason(%v) = %q: not in engine.Rejections", err, r)
		}
	}
}
