package command_test

import (
	"testing"
	"time"

	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/mqtt/command"
)

// FuzzVerify feeds arbitrary payloads and verbs to the decoder: it must
// never panic, never accept a payload that is not a signed JSON object
// under the key, and never mark a rejected command authenticated.
func FuzzVerify(f *testing.F) {
	good, _ := command.Sign(key, hall, ackAt, command.Message{ID: "c1", Incident: "inc-1", By: "op"}, now)
	for _, seed := range [][]byte{good, []byte(`{}`), []byte(`{"id":"x","by":"y"}`), []byte(`[1,2]`), []byte(`{"id":1}`), []byte("\x00\xff")} {
		f.Add("ack", seed)
		f.Add("resolve", seed)
	}
	f.Fuzz(func(t *testing.T, verb string, payload []byte) {
		topic := "hallguard/hall-a/cmd/" + verb
		v := &command.Verifier{Hall: hall, Checker: key, Clock: clock.NewFake(now), Window: time.Minute}
		m, err := v.Verify(verb, topic, payload)
		if err != nil {
			if m.Authenticated {
				t.Fatalf("rejected but authenticated: %v", err)
			}
			return
		}
		if !m.Authenticated || m.ID == "" || m.By == "" {
			t.Fatalf("accepted %q for %q: %+v", payload, verb, m)
		}
		// An accepted command is exactly one that re-signs to the same sig.
		c, err := command.Canonical(hall, topic, payload)
		if err != nil || key.Sign(c) != m.Sig {
			t.Fatalf("accepted but its canonical form does not carry its signature: %v", err)
		}
	})
}
