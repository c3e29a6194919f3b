package command

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// Schemes a hall's commands.auth may name.
const (
	SchemeHMAC    = "hmac"
	SchemeEd25519 = "ed25519"
)

// MinHMACKey is the shortest HMAC key a hall accepts, in bytes: the
// output size of SHA-256, so that the key is not the weak point.
const MinHMACKey = 32

// ErrKey is wrapped by every key parsing error. The errors never quote
// the key file's contents.
var ErrKey = errors.New("bad key")

// ParseHMAC returns the HMAC key in a key file's contents: the bytes less
// surrounding white space (`hallguard keygen -type hmac` writes 64 hex
// digits), at least MinHMACKey of them.
func ParseHMAC(b []byte) (HMAC, error) {
	b = bytes.TrimSpace(b)
	if len(b) < MinHMACKey {
		return nil, fmt.Errorf("%w: %d bytes is too short (at least %d)", ErrKey, len(b), MinHMACKey)
	}
	if bytes.HasPrefix(b, []byte("-----BEGIN")) {
		return nil, fmt.Errorf("%w: a PEM key where an HMAC key was expected (is commands.auth right?)", ErrKey)
	}
	return HMAC(bytes.Clone(b)), nil
}

// ParseEd25519Public returns the Ed25519 public key in a PEM "PUBLIC KEY"
// block (PKIX, as `openssl pkey -pubout` and `hallguard keygen` write it).
func ParseEd25519Public(b []byte) (Ed25519Public, error) {
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
	return Ed25519Public(pub), nil
}

// ParseEd25519Private returns the Ed25519 private key in a PEM "PRIVATE
// KEY" block (PKCS #8, as `openssl genpkey -algorithm ed25519` and
// `hallguard keygen` write it).
func ParseEd25519Private(b []byte) (Ed25519Private, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: no PEM PRIVATE KEY block", ErrKey)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: PRIVATE KEY block does not parse", ErrKey)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %T is not an Ed25519 private key", ErrKey, k)
	}
	return Ed25519Private(priv), nil
}

// NewHMAC returns a new random HMAC key file's contents: 32 random bytes
// as 64 hex digits and a newline.
func NewHMAC() ([]byte, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("command: hmac key: %w", err)
	}
	return []byte(hex.EncodeToString(b[:]) + "\n"), nil
}

// NewEd25519 returns a new key pair as PEM: the private key for the
// center's signing service, the public key for every hall's key_file.
func NewEd25519() (private, public []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("command: ed25519 key: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("command: ed25519 key: %w", err)
	}
	pb, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("command: ed25519 key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pb}), nil
}
