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
	good, _ := command.Sign(key, "ack", command.Message{ID: "c1", Incident: "inc-1", By: "op"}, now)
	for _, seed := range [][]byte{good, []byte(`{}`), []byte(`{"id":"x","by":"y"}`), []byte(`[1,2]`), []byte(`{"id":1}`), []byte("\x00\xff")} {
		f.Add("ack", seed)
		f.Add("resolve", seed)
	}
	f.Fuzz(func(t *testing.T, verb string, payload []byte) {
		v := &command.Verifier{Key: key, Clock: clock.NewFake(now), Window: time.Minute}
		m, err := v.Verify(verb, payload)
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
		c, err := command.Canonical(verb, payload)
		if err != nil || len(c) == 0 {
			t.Fatalf("accepted but not canonicalisable: %v", err)
		}
	})
}
