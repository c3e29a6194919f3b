package command

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"

	"github.com/hallguard/hallguard/daemon/config"
)

// Schemes a hall's commands.auth may name.
const (
	SchemeHMAC    = "hmac"
	SchemeEd25519 = "ed25519"
)

// MinHMACKey is the shortest HMAC key a hall accepts (config.MinHMACKey).
const MinHMACKey = config.MinHMACKey

// ErrKey is wrapped by every key parsing error (config.ErrKey). The errors
// never quote the key file's contents.
var ErrKey = config.ErrKey

// ParseHMAC returns the HMAC key in a key file's contents, by the config's
// rule (config.HMACKey).
func ParseHMAC(b []byte) (HMAC, error) {
	k, err := config.HMACKey(b)
	if err != nil {
		return nil, err
	}
	return HMAC(k), nil
}

// ParseEd25519Public returns the Ed25519 public key in a PEM "PUBLIC KEY"
// block, by the config's rule (config.Ed25519PublicKey).
func ParseEd25519Public(b []byte) (Ed25519Public, error) {
	k, err := config.Ed25519PublicKey(b)
	if err != nil {
		return nil, err
	}
	return Ed25519Public(k), nil
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
