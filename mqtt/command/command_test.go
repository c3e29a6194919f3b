package command_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/mqtt/command"
)

var (
	key = []byte("0123456789abcdef0123456789abcdef")
	now = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
)

func TestVerify(t *testing.T) {
	good := func() []byte {
		p, err := command.Sign(key, "ack", command.Message{ID: "c1", Incident: "inc-1", By: "center-op-7"}, now)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name    string
		verb    string
		payload func() []byte
		key     []byte
		want    error // nil: accepted
	}{
		{"valid", "ack", good, key, nil},
		{"bad signature", "ack", func() []byte { return bytes.Replace(good(), []byte("inc-1"), []byte("inc-2"), 1) }, key, command.ErrBadSignature},
		{"wrong key", "ack", good, []byte("another key"), command.ErrBadSignature},
		{"signed for another verb", "resolve", good, key, command.ErrBadSignature},
		{"expired", "ack", func() []byte {
			p, _ := command.Sign(key, "ack", command.Message{ID: "c2", Incident: "i", By: "x"}, now.Add(-3*time.Minute))
			return p
		}, key, command.ErrExpired},
		{"from the future", "ack", func() []byte {
			p, _ := command.Sign(key, "ack", command.Message{ID: "c3", Incident: "i", By: "x"}, now.Add(3*time.Minute))
			return p
		}, key, command.ErrExpired},
		{"unsigned", "ack", func() []byte { return []byte(`{"id":"c4","by":"x","incident":"i"}`) }, key, command.ErrUnsigned},
		{"oversize", "ack", func() []byte { return []byte(`{"id":"c5","by":"` + strings.Repeat("x", 5000) + `"}`) }, key, command.ErrTooLarge},
		{"not json", "ack", func() []byte { return []byte(`ack inc-1`) }, key, command.ErrBadPayload},
		{"unknown field", "ack", func() []byte { return []byte(`{"id":"c6","by":"x","rm":"-rf"}`) }, key, command.ErrBadPayload},
		{"no id", "ack", func() []byte { return []byte(`{"by":"x"}`) }, key, command.ErrBadPayload},
		{"unknown verb", "launch", func() []byte { return []byte(`{"id":"c7","by":"x"}`) }, key, command.ErrUnknownVerb},
		{"unsigned accepted without a key", "ack", func() []byte { return []byte(`{"id":"c8","by":"x","incident":"i"}`) }, nil, nil},
	}
	for _, c := range cases {
		v := &command.Verifier{Key: c.key, Clock: clock.NewFake(now)}
		m, err := v.Verify(c.verb, c.payload())
		if c.want == nil {
			if err != nil {
				t.Errorf("%s: rejected: %v", c.name, err)
			}
			if m.Authenticated != (c.key != nil) {
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

func TestReplayIsRejected(t *testing.T) {
	v := &command.Verifier{Key: key, Clock: clock.NewFake(now)}
	p, _ := command.Sign(key, "resolve", command.Message{ID: "c1", Incident: "inc-1", By: "op"}, now)
	if _, err := v.Verify("resolve", p); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify("resolve", p); !errors.Is(err, command.ErrReplay) {
		t.Fatalf("second delivery: err = %v, want replay", err)
	}
	if got := command.Reason(command.ErrReplay); got != "replay" {
		t.Errorf("Reason = %q", got)
	}
}

func TestCanonicalIgnoresKeyOrderAndSpace(t *testing.T) {
	a, err := command.Canonical("ack", []byte(`{"by":"x", "id":"1","sig":"zz"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := command.Canonical("ack", []byte(`{"id":"1","by":"x"}`))
	if string(a) != string(b) || string(a) != "ack\n{\"by\":\"x\",\"id\":\"1\"}" {
		t.Errorf("canonical forms differ: %q vs %q", a, b)
	}
}
