package console

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DefaultIterations is what HashPIN uses for 0: PBKDF2 rounds that keep one
// check near a tenth of a second on a Pi-class box.
const DefaultIterations = 100000

// ErrBadHash is returned for a PIN hash that is not
// pbkdf2-sha256$<iterations>$<salt>$<hash>.
var ErrBadHash = errors.New("console: not a pbkdf2-sha256 PIN hash")

const scheme = "pbkdf2-sha256"

// pinHash is a parsed PIN hash.
type pinHash struct {
	iter       int
	salt, hash []byte
}

// HashPIN returns the PIN hash for pin with a fresh random salt, in the
// form the config takes: pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>.
func HashPIN(pin string, iterations int) (string, error) {
	if iterations == 0 {
		iterations = DefaultIterations
	}
	if iterations < 10000 {
		return "", fmt.Errorf("console: %d iterations is too few (at least 10000)", iterations)
	}
	if len(pin) < 4 || strings.Trim(pin, "0123456789") != "" {
		return "", errors.New("console: a PIN is at least 4 digits")
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("console: salt: %w", err)
	}
	key, err := pbkdf2.Key(sha256.New, pin, salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("console: pbkdf2: %w", err)
	}
	return fmt.Sprintf("%s$%d$%s$%s", scheme, iterations, base64.StdEncoding.EncodeToString(salt),
		base64.StdEncoding.EncodeToString(key)), nil
}

func parseHash(s string) (pinHash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 4 || parts[0] != scheme {
		return pinHash{}, ErrBadHash
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1 {
		return pinHash{}, fmt.Errorf("%w: iterations %q", ErrBadHash, parts[1])
	}
	salt, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(salt) < 8 {
		return pinHash{}, fmt.Errorf("%w: salt", ErrBadHash)
	}
	hash, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil || len(hash) != sha256.Size {
		return pinHash{}, fmt.Errorf("%w: hash", ErrBadHash)
	}
	return pinHash{iter: iter, salt: salt, hash: hash}, nil
}

// match reports whether pin is the PIN behind h, in constant time.
func (h pinHash) match(pin string) bool {
	if h.hash == nil {
		return false
	}
	key, err := pbkdf2.Key(sha256.New, pin, h.salt, h.iter, len(h.hash))
	return err == nil && subtle.ConstantTimeCompare(key, h.hash) == 1
}

// VerifyPIN reports whether pin matches the PIN hash encoded.
func VerifyPIN(encoded, pin string) (bool, error) {
	h, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	return h.match(pin), nil
}
