package journal

// Anchoring the chain off the box (issue #12 §5, §3.5 kept and archived).
// The chain alone is unkeyed: whoever holds the file can rewrite its tail
// and recompute every hash, or cut the tail off, and Verify still passes.
// So the head of the chain (seq and hash) leaves the box: in every report
// (ReportPayload.journal) and in a periodic, signed, retained journal/head
// message. CheckAnchors compares the local chain with the heads the center
// holds and names the first record that disagrees.

import (
	"bytes"
	"cmp"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"
)

// Head is the chain's head: the last record's seq and hash ({0, 64 zeros}
// for an empty journal).
type Head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// Head returns the last committed record's seq and hash.
func (s *Store) Head() Head {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Head{Seq: s.lastSeq, Hash: s.headHash}
}

// AnchorResult is the outcome of CheckAnchors.
type AnchorResult struct {
	// Checked is how many anchors were compared with a local record.
	Checked int
	// Pruned is how many anchors name records Compact pruned (not
	// checkable; the pruned records are in the exports, §3.5).
	Pruned int
	// Agree is the highest anchored seq at or below which every anchor
	// agrees (0 when none).
	Agree uint64
	// FirstBad is the first record that disagrees with the center: the
	// smallest anchored seq whose local hash differs, or the first missing
	// record when the journal ends before an anchor. 0 when all agree.
	FirstBad uint64
	// Reason says how it disagrees.
	Reason string
}

// CheckAnchors compares the journal with heads the center holds. A rewritten
// record changes its own hash and, through Prev, every later one, so the
// first anchor at or after it disagrees; a truncated journal lacks the
// records anchors name. Anchors may come in any order and repeat. The change
// lies in (Agree, FirstBad]; with an anchor in every report that is a
// narrow range. Run Verify too: it checks the chain between anchors.
func (s *Store) CheckAnchors(anchors []Head) (AnchorResult, error) {
	as := slices.Clone(anchors)
	slices.SortFunc(as, func(a, b Head) int { return cmp.Compare(a.Seq, b.Seq) })
	s.mu.Lock()
	last, pruned := s.lastSeq, s.anchorSeq
	s.mu.Unlock()
	var res AnchorResult
	for _, a := range as {
		if a.Seq == 0 {
			continue
		}
		if a.Seq <= pruned {
			res.Pruned++
			continue
		}
		if a.Seq > last {
			res.FirstBad = last + 1
			res.Reason = fmt.Sprintf("records %d to %d missing: the center holds head %d (hash %s), the journal ends at %d", last+1, a.Seq, a.Seq, a.Hash, last)
			return res, nil
		}
		r, err := s.Get(a.Seq)
		if errors.Is(err, ErrNotFound) {
			res.FirstBad, res.Reason = a.Seq, fmt.Sprintf("record %d missing: the center holds its hash %s", a.Seq, a.Hash)
			return res, nil
		}
		if err != nil {
			return res, fmt.Errorf("journal: check anchors: %w", err)
		}
		res.Checked++
		if r.Hash != a.Hash {
			res.FirstBad = a.Seq
			res.Reason = fmt.Sprintf("record %d has hash %s, the center holds %s: a record in %d..%d was changed", a.Seq, r.Hash, a.Hash, res.Agree+1, a.Seq)
			return res, nil
		}
		res.Agree = a.Seq
	}
	return res, nil
}

// HeadMessage is the retained journal/head message: the hall's chain head
// at a time, signed with the box's key where one is configured.
//
// The signature covers the concatenation of five netstrings (as the record
// hash, see Record): "hallguard.journal.head.v1", hall, seq (decimal), hash,
// at (UTC RFC 3339 with nanoseconds, as in the JSON). alg "hmac-sha256":
// sig is the base64 HMAC-SHA256 under the hall's command key; alg
// "ed25519": the base64 Ed25519 signature by the box's journal key
// (journal.head_key_file), verified with its public key; alg "none":
// unsigned (no key configured).
type HeadMessage struct {
	Hall string    `json:"hall"`
	Seq  uint64    `json:"seq"`
	Hash string    `json:"hash"`
	At   time.Time `json:"at"`
	Alg  string    `json:"alg"`
	Sig  string    `json:"sig,omitempty"`
}

// Signature algorithms of HeadMessage.Alg.
const (
	HeadAlgNone    = "none"
	HeadAlgHMAC    = "hmac-sha256"
	HeadAlgEd25519 = "ed25519"
)

// ErrBadHeadSignature: a head message's signature does not verify under the
// key given, or it is signed with another algorithm than the key's.
var ErrBadHeadSignature = errors.New("journal: head signature does not verify")

const headDomain = "hallguard.journal.head.v1"

func (m *HeadMessage) signed() []byte {
	var b bytes.Buffer
	for _, f := range []string{headDomain, m.Hall, strconv.FormatUint(m.Seq, 10), m.Hash, timeText(m.At)} {
		writeNetstring(&b, f)
	}
	return b.Bytes()
}

// HeadKey signs or verifies head messages. The zero HeadKey signs with
// alg "none" and verifies nothing.
type HeadKey struct {
	alg  string
	hmac []byte
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

// HMACHeadKey signs and verifies with the hall's HMAC command key.
func HMACHeadKey(key []byte) HeadKey { return HeadKey{alg: HeadAlgHMAC, hmac: bytes.Clone(key)} }

// Ed25519HeadKey signs (and verifies) with the box's private key.
func Ed25519HeadKey(priv ed25519.PrivateKey) HeadKey {
	return HeadKey{alg: HeadAlgEd25519, priv: priv, pub: priv.Public().(ed25519.PublicKey)}
}

// Ed25519HeadVerifier verifies with a box's public key (the center's side).
func Ed25519HeadVerifier(pub ed25519.PublicKey) HeadKey {
	return HeadKey{alg: HeadAlgEd25519, pub: pub}
}

// Alg is the key's algorithm, HeadAlgNone for the zero key.
func (k HeadKey) Alg() string {
	if k.alg == "" {
		return HeadAlgNone
	}
	return k.alg
}

// Sign sets m.Alg and m.Sig.
func (k HeadKey) Sign(m *HeadMessage) error {
	m.Alg, m.Sig = k.Alg(), ""
	switch k.alg {
	case HeadAlgHMAC:
		mac := hmac.New(sha256.New, k.hmac)
		mac.Write(m.signed())
		m.Sig = base64.StdEncoding.EncodeToString(mac.Sum(nil))
	case HeadAlgEd25519:
		if k.priv == nil {
			return fmt.Errorf("journal: sign head: a public key cannot sign")
		}
		m.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(k.priv, m.signed()))
	}
	return nil
}

// Verify checks m's signature; it wraps ErrBadHeadSignature when it does not
// verify, is missing, or is of another algorithm than k's.
func (k HeadKey) Verify(m HeadMessage) error {
	if m.Alg != k.Alg() {
		return fmt.Errorf("%w: signed %q, key is %q", ErrBadHeadSignature, m.Alg, k.Alg())
	}
	sig, err := base64.StdEncoding.DecodeString(m.Sig)
	if err != nil {
		return fmt.Errorf("%w: sig is not base64", ErrBadHeadSignature)
	}
	switch k.alg {
	case HeadAlgHMAC:
		mac := hmac.New(sha256.New, k.hmac)
		mac.Write(m.signed())
		if !hmac.Equal(sig, mac.Sum(nil)) {
			return ErrBadHeadSignature
		}
	case HeadAlgEd25519:
		if !ed25519.Verify(k.pub, m.signed(), sig) {
			return ErrBadHeadSignature
		}
	}
	return nil
}

// ReadEd25519Key reads an Ed25519 private key (PEM "PRIVATE KEY", PKCS #8,
// as `openssl genpkey -algorithm ed25519` writes it) or public key (PEM
// "PUBLIC KEY") from path, and returns the matching HeadKey. Errors never
// quote the file's contents.
func ReadEd25519Key(path string) (HeadKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return HeadKey{}, fmt.Errorf("journal: head key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return HeadKey{}, fmt.Errorf("journal: head key %s: no PEM block", path)
	}
	var k any
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "PUBLIC KEY":
		k, err = x509.ParsePKIXPublicKey(blk.Bytes)
	default:
		return HeadKey{}, fmt.Errorf("journal: head key %s: PEM block %q, want PRIVATE KEY or PUBLIC KEY", path, blk.Type)
	}
	if err != nil {
		return HeadKey{}, fmt.Errorf("journal: head key %s: %w", path, err)
	}
	switch k := k.(type) {
	case ed25519.PrivateKey:
		return Ed25519HeadKey(k), nil
	case ed25519.PublicKey:
		return Ed25519HeadVerifier(k), nil
	}
	return HeadKey{}, fmt.Errorf("journal: head key %s: %T, want an Ed25519 key", path, k)
}
