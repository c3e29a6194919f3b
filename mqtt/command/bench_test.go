package command_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/mqtt/command"
)

// BenchmarkVerify is what one message on cmd/ costs the MQTT receiving
// goroutine (Verify runs in mqtt.Intake.Admit): a signed command under each
// scheme, and junk that fails before any signature is checked.
func BenchmarkVerify(b *testing.B) {
	privPEM, pubPEM, _ := command.NewEd25519()
	priv, _ := command.ParseEd25519Private(privPEM)
	pub, _ := command.ParseEd25519Public(pubPEM)
	for _, c := range []struct {
		name    string
		signer  command.Signer
		checker command.Checker
	}{{"hmac", key, key}, {"ed25519", priv, pub}} {
		b.Run(c.name, func(b *testing.B) {
			fake := clock.NewFake(now)
			v := &command.Verifier{Hall: hall, Checker: c.checker, Clock: fake, Window: time.Hour}
			payloads := make([][]byte, b.N)
			for i := range payloads {
				payloads[i] = sign(b, c.signer, hall, ackAt, command.Message{ID: fmt.Sprint(i), Incident: "inc-1", By: "op"}, now)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := v.Verify("ack", ackAt, payloads[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("junk", func(b *testing.B) {
		v := &command.Verifier{Hall: hall, Checker: key, Clock: clock.NewFake(now)}
		junk := []byte(`{"id":"junk-1","by":"attacker","incident":"x","nonce":"1","sig":"0000000000000000000000000000000000000000000000000000000000000001"}`)
		for i := 0; i < b.N; i++ {
			_, _ = v.Verify("ack", ackAt, junk)
		}
	})
}
