// Package command is the format of commands sent to a hall on
// <root>/cmd/<verb>: the JSON payload, its canonical form, the HMAC-SHA256
// signature, and the checks a receiver makes (size, signature, time window,
// replayed nonce). The daemon verifies with a Verifier; `hallguard cmd` and
// the center sign with Sign.
//
// It decides nothing about incidents (that is the engine's job) and does
// no I/O.
package command

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

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
	Verb          string `json:"-"`
	Authenticated bool   `json:"-"`
}

// Verbs a hall accepts.
var Verbs = []string{"ack", "resolve", "false_alarm", "step", "trigger", "report", "received", "drill", "test", "review"}

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

// Reason returns the fixed label for a rejection error.
func Reason(err error) string {
	for _, r := range []struct {
		err   error
		label string
	}{{ErrTooLarge, "too_large"}, {ErrBadPayload, "bad_payload"}, {ErrUnknownVerb, "unknown_verb"},
		{ErrUnsigned, "unsigned"}, {ErrBadSignature, "bad_signature"}, {ErrExpired, "expired"}, {ErrReplay, "replay"}} {
		if errors.Is(err, r.err) {
			return r.label
		}
	}
	return "rejected"
}

// Canonical returns the bytes that are signed: the verb, a newline, and the
// payload's JSON object without "sig", with keys sorted, no insignificant
// white space and no HTML escaping.
func Canonical(verb string, payload []byte) ([]byte, error) {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPayload, err)
	}
	delete(obj, "sig")
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString(verb)
	b.WriteByte('\n')
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		var compact bytes.Buffer
		if err := json.Compact(&compact, obj[k]); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadPayload, err)
		}
		b.Write(compact.Bytes())
	}
	b.WriteByte('}')
	return b.Bytes(), nil
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

func mac(key, canonical []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write(canonical)
	return hex.EncodeToString(h.Sum(nil))
}

// Sign fills m's TS and Nonce (when empty), signs it for verb with key and
// returns the payload to publish on cmd/<verb>.
func Sign(key []byte, verb string, m Message, now time.Time) ([]byte, error) {
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
	canon, err := Canonical(verb, unsigned)
	if err != nil {
		return nil, err
	}
	m.Sig = mac(key, canon)
	return marshal(m)
}

// Verifier checks incoming commands. It is safe for concurrent use.
type Verifier struct {
	// Key is the shared HMAC key; nil accepts unsigned commands as
	// unauthenticated (they can never resolve a robbery).
	Key []byte
	// Window is how far a command's ts may be from now (default 2m).
	Window time.Duration
	// MaxSize is the largest payload accepted (default 4096 bytes).
	MaxSize int
	Clock   clock.Clock

	mu     sync.Mutex
	nonces map[string]time.Time
}

// Verify decodes and checks a payload that arrived on cmd/<verb>.
func (v *Verifier) Verify(verb string, payload []byte) (Message, error) {
	maxSize, window := v.MaxSize, v.Window
	if maxSize == 0 {
		maxSize = 4096
	}
	if window == 0 {
		window = 2 * time.Minute
	}
	var m Message
	if len(payload) > maxSize {
		return m, fmt.Errorf("%w: %d bytes (at most %d)", ErrTooLarge, len(payload), maxSize)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("%w: %v", ErrBadPayload, err)
	}
	if dec.More() {
		return m, fmt.Errorf("%w: trailing data after the JSON object", ErrBadPayload)
	}
	m.Verb = verb
	known := false
	for _, k := range Verbs {
		known = known || k == verb
	}
	if !known {
		return m, fmt.Errorf("%w %q", ErrUnknownVerb, verb)
	}
	if m.ID == "" || m.By == "" {
		return m, fmt.Errorf("%w: id and by are required", ErrBadPayload)
	}
	if v.Key == nil {
		return m, nil
	}
	if m.Sig == "" {
		return m, fmt.Errorf("%w: this hall requires signed commands", ErrUnsigned)
	}
	canon, err := Canonical(verb, payload)
	if err != nil {
		return m, err
	}
	if !hmac.Equal([]byte(mac(v.Key, canon)), []byte(m.Sig)) {
		return m, ErrBadSignature
	}
	clk := v.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	now := clk.Now()
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
	for n, t := range v.nonces { // forget nonces once their ts can no longer pass
		if now.Sub(t) > 2*window {
			delete(v.nonces, n)
		}
	}
	if _, seen := v.nonces[m.Nonce]; seen {
		return m, fmt.Errorf("%w: nonce %s already used", ErrReplay, m.Nonce)
	}
	v.nonces[m.Nonce] = m.TS
	m.Authenticated = true
	return m, nil
}
