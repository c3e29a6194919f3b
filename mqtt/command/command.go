// Package command is the format of commands sent to a hall on
// <root>/cmd/<verb>: the JSON payload, its canonical form, its signature
// (Ed25519 by the center, or a per-hall HMAC-SHA256 key), and the checks a
// receiver makes (size, strict JSON, signature, time window, replayed
// nonce). The daemon verifies with a Verifier; `hallguard cmd` and the
// center sign with Sign.
//
// What is signed binds a command to one hall and one topic: the hall id
// and the full topic are inside the signed text, so a command captured at
// one hall is worthless at another that shares its key, and a command for
// one verb cannot be replayed on another's topic.
//
// It decides nothing about incidents (that is the engine's job) and does
// no I/O.
package command

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/devices/clock"
)

// Message is a decoded command.
type Message struct {
	ID       string   `json:"id"`
	Incident string   `json:"incident,omitempty"`
	Step     string   `json:"step,omitempty"`
	Playbook string   `json:"playbook,omitempty"`
	Variant  string   `json:"variant,omitempty"`
	By       string   `json:"by"`
	Reason   string   `json:"reason,omitempty"`
	Records  []string `json:"records,omitempty"`
	Impact   *string  `json:"impact,omitempty"`
	Control  *string  `json:"control,omitempty"`
	Trend    *string  `json:"trend,omitempty"`
	Other    *string  `json:"other,omitempty"`

	// ImpactDetail: report, the structured §3.3 4 impact (keys property,
	// cash_vouchers, casualties, scope). Action, Participants, Drill: drill
	// (action start, stop or evaluate; who takes part; the drill evaluated).
	ImpactDetail map[string]string `json:"impact_detail,omitempty"`
	Action       string            `json:"action,omitempty"`
	Participants []string          `json:"participants,omitempty"`
	Drill        string            `json:"drill,omitempty"`
	// Input is the input whose test path "test" fires.
	Input string `json:"input,omitempty"`
	// Inputs are the inputs or zones a walk test (drill, action walk_start)
	// covers; every other input stays live.
	Inputs []string `json:"inputs,omitempty"`
	// Review is what "review" files (§3.4): {"cause","course","handling","problems","actions":[{"owner","due","text"}]}.
	Review json.RawMessage `json:"review,omitempty"`

	// Report is the report id the center acknowledges ("received").
	Report string `json:"report,omitempty"`
	// TS is when the command was signed; Nonce makes it unique.
	TS    time.Time `json:"ts"`
	Nonce string    `json:"nonce,omitempty"`
	Sig   string    `json:"sig,omitempty"`

	// Verb comes from the topic; Authenticated is set by Verify.
	Verb          engine.Verb `json:"-"`
	Authenticated bool        `json:"-"`
}

// fields are Message's JSON names: a payload may use these and no other,
// spelt exactly (encoding/json would match "INCIDENT" to incident).
var fields = func() map[string]bool {
	m := map[string]bool{}
	t := reflect.TypeFor[Message]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			m[name] = true
		}
	}
	return m
}()

// Rejection reasons, as sentinel errors. Reason maps them to metric labels.
var (
	ErrTooLarge     = errors.New("payload over size")
	ErrBadPayload   = errors.New("bad payload")
	ErrUnknownVerb  = errors.New("unknown verb")
	ErrUnsigned     = errors.New("unsigned")
	ErrBadSignature = errors.New("bad signature")
	ErrExpired      = errors.New("expired")
	ErrReplay       = errors.New("replay")
)

// Reason returns the fixed label for a rejection error (engine.Rejections).
func Reason(err error) engine.Rejection {
	for _, r := range []struct {
		err   error
		label engine.Rejection
	}{{ErrTooLarge, engine.RejectTooLarge}, {ErrBadPayload, engine.RejectBadPayload}, {ErrUnknownVerb, engine.RejectUnknownVerb},
		{ErrUnsigned, engine.RejectUnsigned}, {ErrBadSignature, engine.RejectBadSignature}, {ErrExpired, engine.RejectExpired}, {ErrReplay, engine.RejectReplay}} {
		if errors.Is(err, r.err) {
			return r.label
		}
	}
	return engine.RejectOther
}

// canonicalTag starts every signed text, so that a signature over
// anything else (a v1 command, a report) is never a command's.
const canonicalTag = "hallguard-command-v2"

// Canonical returns the bytes that are signed:
//
//	hallguard-command-v2 LF <hall id> LF <full topic> LF <object>
//
// where <object> is the payload's JSON object without "sig", with its keys
// sorted, no insignificant white space and no HTML escaping. The payload
// must pass the strict decoding Verify applies (exact field names, no
// duplicate, nothing after the object).
func Canonical(hall, topic string, payload []byte) ([]byte, error) {
	obj, err := strictObject(payload)
	if err != nil {
		return nil, err
	}
	return canonical(hall, topic, obj)
}

func canonical(hall, topic string, obj map[string]json.RawMessage) ([]byte, error) {
	if strings.ContainsAny(hall, "\n") || strings.ContainsAny(topic, "\n") {
		return nil, fmt.Errorf("%w: hall or topic holds a newline", ErrBadPayload)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		if k != "sig" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString(canonicalTag + "\n" + hall + "\n" + topic + "\n{")
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		if err := json.Compact(&b, obj[k]); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadPayload, err)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// strictObject decodes payload as one JSON object whose keys are Message's
// field names, exactly and at most once each, followed by nothing but white
// space.
func strictObject(payload []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: not a JSON object", ErrBadPayload)
	}
	obj := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadPayload, err)
		}
		k, _ := tok.(string)
		if !fields[k] {
			return nil, fmt.Errorf("%w: unknown field (field names are exact and lower-case)", ErrBadPayload)
		}
		if _, dup := obj[k]; dup {
			return nil, fmt.Errorf("%w: field %s given twice", ErrBadPayload, k)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadPayload, err)
		}
		obj[k] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("%w: %v", ErrBadPayload, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrBadPayload)
	}
	return obj, nil
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// Signer signs canonical command text. The center holds it.
type Signer interface {
	// Sign returns the "sig" value for canonical.
	Sign(canonical []byte) string
}

// Checker checks a "sig" value over canonical command text. A hall holds
// exactly one, chosen by its config: it never takes the scheme from the
// command, so an HMAC made with an Ed25519 public key is just a bad
// signature.
type Checker interface {
	Check(canonical []byte, sig string) bool
}

// HMAC is a per-hall shared key: it both signs and checks (hex
// HMAC-SHA256). A small site without a center signing service uses it.
type HMAC []byte

// Sign implements Signer.
func (k HMAC) Sign(canonical []byte) string {
	h := hmac.New(sha256.New, k)
	h.Write(canonical)
	return hex.EncodeToString(h.Sum(nil))
}

// Check implements Checker.
func (k HMAC) Check(canonical []byte, sig string) bool {
	return hmac.Equal([]byte(k.Sign(canonical)), []byte(sig))
}

// Ed25519Private is the center's signing key (hex signature).
type Ed25519Private ed25519.PrivateKey

// Sign implements Signer.
func (k Ed25519Private) Sign(canonical []byte) string {
	return hex.EncodeToString(ed25519.Sign(ed25519.PrivateKey(k), canonical))
}

// Ed25519Public is what a hall holds: it checks, and cannot sign, so a
// stolen box cannot command the others.
type Ed25519Public ed25519.PublicKey

// Check implements Checker.
func (k Ed25519Public) Check(canonical []byte, sig string) bool {
	s, err := hex.DecodeString(sig)
	if err != nil || len(s) != ed25519.SignatureSize || len(k) != ed25519.PublicKeySize {
		return false
	}
	return ed25519.Verify(ed25519.PublicKey(k), canonical, s)
}

var (
	_ Signer  = HMAC(nil)
	_ Checker = HMAC(nil)
	_ Signer  = Ed25519Private(nil)
	_ Checker = Ed25519Public(nil)
)

// Sign fills m's TS and Nonce (when empty), signs it with s for the hall
// and the full topic it will be published on (<prefix>/<hall>/cmd/<verb>),
// and returns the payload.
func Sign(s Signer, hall, topic string, m Message, now time.Time) ([]byte, error) {
	if m.TS.IsZero() {
		m.TS = now.UTC()
	}
	if m.Nonce == "" {
		var b [12]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("command: nonce: %w", err)
		}
		m.Nonce = hex.EncodeToString(b[:])
	}
	m.Sig = ""
	unsigned, err := marshal(m)
	if err != nil {
		return nil, fmt.Errorf("command: %w", err)
	}
	canon, err := Canonical(hall, topic, unsigned)
	if err != nil {
		return nil, fmt.Errorf("command: %w", err)
	}
	m.Sig = s.Sign(canon)
	return marshal(m)
}

// Verifier checks incoming commands. It is safe for concurrent use.
type Verifier struct {
	// Hall is this hall's id, inside every signature.
	Hall string
	// Checker checks signatures; nil accepts unsigned commands as
	// unauthenticated (they can never resolve a robbery).
	Checker Checker
	// Window is how far a command's ts may be from now (default 2m).
	Window time.Duration
	// MaxSize is the largest payload accepted (default 4096 bytes).
	MaxSize int
	Clock   clock.Clock

	mu     sync.Mutex
	nonces map[string]time.Time
	swept  time.Time // when nonces were last swept
}

func (v *Verifier) window() time.Duration {
	if v.Window == 0 {
		return 2 * time.Minute
	}
	return v.Window
}

func (v *Verifier) now() time.Time {
	if v.Clock == nil {
		return time.Now()
	}
	return v.Clock.Now()
}

// Remember marks a nonce used at ts, as if a command carrying it had been
// accepted: the daemon feeds it the nonces its journal holds, so that a
// command accepted before a restart is still a replay after it. Nonces
// too old to matter are ignored.
func (v *Verifier) Remember(nonce string, ts time.Time) {
	if nonce == "" || v.now().Sub(ts) > 2*v.window() {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.nonces == nil {
		v.nonces = map[string]time.Time{}
	}
	v.nonces[nonce] = ts
}

// Verify decodes and checks a payload that arrived on topic (the full
// topic, <prefix>/<hall>/cmd/<verb>), for verb.
func (v *Verifier) Verify(verb, topic string, payload []byte) (Message, error) {
	maxSize := v.MaxSize
	if maxSize == 0 {
		maxSize = 4096
	}
	var m Message
	if len(payload) > maxSize {
		return m, fmt.Errorf("%w: %d bytes (at most %d)", ErrTooLarge, len(payload), maxSize)
	}
	obj, err := strictObject(payload)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(payload, &m); err != nil { // field names are known exact: no case folding left
		return Message{}, fmt.Errorf("%w: %v", ErrBadPayload, err)
	}
	m.Verb = engine.Verb(verb)
	if !slices.Contains(engine.Verbs, m.Verb) {
		return m, fmt.Errorf("%w %q", ErrUnknownVerb, verb)
	}
	if m.ID == "" || m.By == "" {
		return m, fmt.Errorf("%w: id and by are required", ErrBadPayload)
	}
	if v.Checker == nil {
		return m, nil
	}
	if m.Sig == "" {
		return m, fmt.Errorf("%w: this hall requires signed commands", ErrUnsigned)
	}
	canon, err := canonical(v.Hall, topic, obj)
	if err != nil {
		return m, err
	}
	if !v.Checker.Check(canon, m.Sig) {
		return m, ErrBadSignature
	}
	now, window := v.now(), v.window()
	if m.TS.IsZero() || m.TS.Before(now.Add(-window)) || m.TS.After(now.Add(window)) {
		return m, fmt.Errorf("%w: ts %s is outside ±%s of %s", ErrExpired, m.TS.Format(time.RFC3339), window, now.UTC().Format(time.RFC3339))
	}
	if m.Nonce == "" {
		return m, fmt.Errorf("%w: a signed command needs a nonce", ErrBadPayload)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.nonces == nil {
		v.nonces = map[string]time.Time{}
	}
	if now.Sub(v.swept) >= window { // forget nonces once their ts can no longer pass, at most once a window
		for n, t := range v.nonces {
			if now.Sub(t) > 2*window {
				delete(v.nonces, n)
			}
		}
		v.swept = now
	}
	if _, seen := v.nonces[m.Nonce]; seen {
		return m, fmt.Errorf("%w: nonce %s already used", ErrReplay, m.Nonce)
	}
	v.nonces[m.Nonce] = m.TS
	m.Authenticated = true
	return m, nil
}
