package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon"
	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/mqtt/command"
)

// TestKeygenMakesKeysTheHallAccepts: each kind of key keygen writes is
// one a hall loads and a center signs with, the secret files are the
// owner's alone, and nothing is ever overwritten.
func TestKeygenMakesKeysTheHallAccepts(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	for _, tc := range []struct {
		typ, file, checkerFile string
	}{
		{command.SchemeEd25519, "center.key", "center.key.pub"},
		{command.SchemeHMAC, "hall.key", "hall.key"},
	} {
		path := filepath.Join(dir, tc.file)
		var out, errb bytes.Buffer
		if code := cmdKeygen([]string{"-type", tc.typ, "-out", path}, &out, &errb); code != exitOK {
			t.Fatalf("%s: exit %d: %s", tc.typ, code, errb.String())
		}
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %s mode %v, %v; want 0600", tc.typ, path, st.Mode().Perm(), err)
		}
		signer, err := daemon.ReadSigner(path)
		if err != nil {
			t.Fatalf("%s: the signing key: %v", tc.typ, err)
		}
		checker, err := daemon.ReadChecker(tc.typ, filepath.Join(dir, tc.checkerFile))
		if err != nil {
			t.Fatalf("%s: the hall's key: %v", tc.typ, err)
		}
		p, err := command.Sign(signer, "h", "hallguard/h/cmd/ack", command.Message{ID: "c", By: "op", Incident: "i"}, now)
		if err != nil {
			t.Fatal(err)
		}
		v := &command.Verifier{Hall: "h", Checker: checker, Clock: clock.NewFake(now)}
		if _, err := v.Verify("ack", "hallguard/h/cmd/ack", p); err != nil {
			t.Errorf("%s: a command signed with the new key: %v", tc.typ, err)
		}
		if code := cmdKeygen([]string{"-type", tc.typ, "-out", path}, &out, &errb); code == exitOK {
			t.Errorf("%s: keygen overwrote %s", tc.typ, path)
		}
	}
}
