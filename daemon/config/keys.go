package config

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// What a command key file must hold is part of the config's rules, so it
// is decided here, where `hallguard check` sees it, and mqtt/command parses
// keys through these functions: one rule, no import of the transport below
// the engine.

// MinHMACKey is the shortest HMAC command key a hall accepts, in bytes: the
// output size of SHA-256, so that the key is not the weak point.
const MinHMACKey = 32

// ErrKey is wrapped by every key error. The errors never quote the key
// file's contents.
var ErrKey = errors.New("bad key")

// HMACKey returns the HMAC key in a key file's contents: the bytes less
// surrounding white space (`hallguard keygen -type hmac` writes 64 hex
// digits), at least MinHMACKey of them.
func HMACKey(b []byte) ([]byte, error) {
	b = bytes.TrimSpace(b)
	if len(b) < MinHMACKey {
		return nil, fmt.Errorf("%w: %d bytes is too short (at least %d)", ErrKey, len(b), MinHMACKey)
	}
	if bytes.HasPrefix(b, []byte("-----BEGIN")) {
		return nil, fmt.Errorf("%w: a PEM key where an HMAC key was expected (is commands.auth right?)", ErrKey)
	}
	return bytes.Clone(b), nil
}

// Ed25519PublicKey returns the Ed25519 public key in a PEM "PUBLIC KEY"
// block (PKIX, as `openssl pkey -pubout` and `hallguard keygen` write it).
func Ed25519PublicKey(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		if blk != nil && blk.Type == "PRIVATE KEY" {
			return nil, fmt.Errorf("%w: a private key: a hall holds only the center's public key", ErrKey)
		}
		return nil, fmt.Errorf("%w: no PEM PUBLIC KEY block", ErrKey)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: PUBLIC KEY block does not parse", ErrKey)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: %T is not an Ed25519 public key", ErrKey, k)
	}
	return pub, nil
}
