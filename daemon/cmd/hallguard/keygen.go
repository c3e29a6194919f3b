package main

import (
	"fmt"
	"io"
	"os"

	"github.com/hallguard/hallguard/mqtt/command"
)

// cmdKeygen makes a command key (README: Security model):
//
//	hallguard keygen -type ed25519 -out center.key   center.key (private, 0600) + center.key.pub (for every hall)
//	hallguard keygen -type hmac    -out hall.key     one hall's shared key (0600)
//
// It never overwrites a file.
func cmdKeygen(args []string, stdout, stderr io.Writer) int {
	fs, _ := newFlags("keygen", stderr)
	typ := fs.String("type", command.SchemeEd25519, "ed25519 (the center signs, halls hold the public key) or hmac (one shared key per hall)")
	out := fs.String("out", "", "file to write (ed25519: the private key; the public key goes to FILE.pub)")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: hallguard keygen -type ed25519|hmac -out FILE")
		return exitConfig
	}
	switch *typ {
	case command.SchemeHMAC:
		k, err := command.NewHMAC()
		if err == nil {
			err = writeNew(*out, k, 0o600)
		}
		if err != nil {
			fmt.Fprintln(stderr, "hallguard keygen:", err)
			return exitFail
		}
		fmt.Fprintf(stdout, "wrote %s (HMAC key, mode 0600): install it as this hall's commands.key_file, and give the center a copy\n", *out)
	case command.SchemeEd25519:
		priv, pub, err := command.NewEd25519()
		if err == nil {
			err = writeNew(*out, priv, 0o600)
		}
		if err == nil {
			err = writeNew(*out+".pub", pub, 0o644)
		}
		if err != nil {
			fmt.Fprintln(stderr, "hallguard keygen:", err)
			return exitFail
		}
		fmt.Fprintf(stdout, "wrote %s (the center's private key, mode 0600: keep it off the halls) and %s.pub (each hall's commands.key_file, auth: ed25519)\n", *out, *out)
	default:
		fmt.Fprintf(stderr, "hallguard keygen: -type %q: want ed25519 or hmac\n", *typ)
		return exitConfig
	}
	return exitOK
}

// writeNew writes a new file with mode, never over an existing one.
func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
