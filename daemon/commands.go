package daemon

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/daemon/journal"
	"github.com/hallguard/hallguard/mqtt"
	"github.com/hallguard/hallguard/mqtt/command"
)

// Reply is what the daemon publishes on cmd/reply for every command.
type Reply struct {
	ID       string           `json:"id"`
	Verb     string           `json:"verb"`
	Incident string           `json:"incident,omitempty"`
	Result   string           `json:"result"` // "ok" or "error: reason"
	Reason   engine.Rejection `json:"reason,omitempty"`
	At       time.Time        `json:"at"`
}

// ReadChecker reads a hall's command key file (a systemd credential works)
// for auth, "ed25519" (the center's public key, PEM) or "hmac" (the shared
// key, at least 32 bytes). Errors never quote the file's contents.
func ReadChecker(auth, path string) (command.Checker, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("command key: %w", err)
	}
	switch auth {
	case command.SchemeEd25519:
		k, err := command.ParseEd25519Public(b)
		if err != nil {
			return nil, fmt.Errorf("command key %s: %w", path, err)
		}
		return k, nil
	case command.SchemeHMAC:
		k, err := command.ParseHMAC(b)
		if err != nil {
			return nil, fmt.Errorf("command key %s: %w", path, err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("command key %s: no key for auth %q", path, auth)
}

// ReadSigner reads a signing key file for `hallguard cmd` and tests: an
// Ed25519 private key (PEM PRIVATE KEY, the center's) or else an HMAC key.
func ReadSigner(path string) (command.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("command key: %w", err)
	}
	if strings.Contains(string(b), "-----BEGIN PRIVATE KEY-----") {
		k, err := command.ParseEd25519Private(b)
		if err != nil {
			return nil, fmt.Errorf("command key %s: %w", path, err)
		}
		return k, nil
	}
	k, err := command.ParseHMAC(b)
	if err != nil {
		return nil, fmt.Errorf("command key %s: %w", path, err)
	}
	return k, nil
}

func newVerifier(d *Daemon) (*command.Verifier, error) {
	v := &command.Verifier{Hall: d.cfg.Hall.ID, Window: d.cfg.Commands.Window.D(), MaxSize: d.cfg.Commands.MaxPayload, Clock: d.clk}
	if a := d.cfg.Commands.Auth; a != "none" {
		c, err := ReadChecker(a, d.cfg.Path(d.cfg.Commands.KeyFile))
		if err != nil {
			return nil, fmt.Errorf("daemon: %w", err)
		}
		v.Checker = c
	}
	d.keyDigest = keyDigest(d.cfg)
	return v, nil
}

// keyDigest is the SHA-256 of cfg's command key file, "" without one or
// when it cannot be read. The key is read once, at start: a reload that
// finds other contents needs a restart (reload.go).
func keyDigest(cfg *config.Config) string {
	if cfg.Commands.Auth == "none" {
		return ""
	}
	b, err := os.ReadFile(cfg.Path(cfg.Commands.KeyFile))
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// rememberNonces feeds the verifier the nonces of the commands the journal
// holds from the last two windows: a command accepted before a restart is
// still a replay after it.
func (d *Daemon) rememberNonces() int {
	since := d.clk.Now().Add(-2 * d.verifier.Window)
	from := uint64(0)
	if n := d.store.Stats().Records; n > 50000 {
		from = n - 50000
	}
	// One pass over the journal's tail: this runs before the daemon is
	// ready, and before commands are subscribed.
	recs, err := d.store.List(journal.Filter{Since: since, From: from})
	if err != nil {
		d.log.Error("command nonces not read back from the journal", "err", err)
		return 0
	}
	n := 0
	for _, r := range recs {
		if r.Kind != "command" && r.Kind != "command_rejected" && r.Kind != "delivered" {
			continue
		}
		var rec struct {
			Nonce   string          `json:"nonce"`
			TS      time.Time       `json:"ts"`
			Payload json.RawMessage `json:"payload"` // records before nonce and ts were kept apart
		}
		if json.Unmarshal(r.Data, &rec) != nil {
			continue
		}
		if rec.Nonce == "" && len(rec.Payload) > 0 {
			var m command.Message
			if json.Unmarshal(rec.Payload, &m) == nil {
				rec.Nonce, rec.TS = m.Nonce, m.TS
			}
		}
		if rec.Nonce != "" {
			d.verifier.Remember(rec.Nonce, rec.TS)
			n++
		}
	}
	return n
}

// commandIntake takes commands in from cmd/+ (and the ack topic): each is
// verified as it arrives, before it is queued, so junk never stands in a
// signed command's way; only verified commands wait for the engine.
type commandIntake struct {
	d       *Daemon
	limiter *tokenBucket
	limited atomic.Uint64 // rejections not journalled nor answered
}

var _ mqtt.Intake = (*commandIntake)(nil)

// verified is an admitted command.
type verified struct {
	m       command.Message
	label   string
	payload []byte
}

// refused carries a rejection's verb label and id from Admit to Refuse.
type refused struct {
	label, id, verb string
	err             error
}

func (e *refused) Error() string { return e.err.Error() }
func (e *refused) Unwrap() error { return e.err }

func (ci *commandIntake) verbOf(topic string) (verb, label string) {
	verb = strings.TrimPrefix(topic, "cmd/")
	if topic == ci.d.cfg.MQTT.AckTopic {
		verb = engine.VerbReceived.String()
	}
	label = verb
	if !slices.Contains(engine.Verbs, engine.Verb(verb)) {
		label = "unknown" // label values never come from payloads or topics
	}
	return verb, label
}

// Admit implements mqtt.Intake: it runs on the MQTT receiving goroutine.
func (ci *commandIntake) Admit(topic string, payload []byte) (any, error) {
	d := ci.d
	if topic == "cmd/reply" {
		return nil, errOwnReply
	}
	verb, label := ci.verbOf(topic)
	m, err := d.verifier.Verify(verb, d.pub.Topics().Under(topic), payload)
	if err == nil && m.Verb == engine.VerbReceived && m.Report == "" {
		err = fmt.Errorf("%w: received names no report", command.ErrBadPayload)
	}
	if err != nil {
		d.metrics.commands.WithLabelValues(label, command.Reason(err).String()).Inc()
		return nil, &refused{label: label, id: m.ID, verb: verb, err: err}
	}
	return verified{m: m, label: label, payload: payload}, nil
}

var errOwnReply = errors.New("our own reply")

// Refuse implements mqtt.Intake: a rejected payload is journalled as its
// hash and size, and answered, at most at the rejection rate; past it the
// rejection is only counted.
func (ci *commandIntake) Refuse(topic string, payload []byte, err error) {
	d := ci.d
	var r *refused
	if !errors.As(err, &r) { // our own reply, or the publisher's overload
		if !errors.Is(err, errOwnReply) {
			d.metrics.commands.WithLabelValues("unknown", engine.RejectOverload.String()).Inc()
		}
		return
	}
	if !ci.limiter.take(d.clk.Now()) {
		ci.limited.Add(1)
		return
	}
	if r.id == "" { // a payload refused before its id was read: the first object's id, for the center's correlation
		var first struct {
			ID string `json:"id"`
		}
		if json.NewDecoder(bytes.NewReader(payload)).Decode(&first) == nil && len(first.ID) <= 128 {
			r.id = first.ID
		}
	}
	sum := sha256.Sum256(payload)
	d.rec.add("command_rejected", "", "", false, map[string]any{"verb": r.label, "reason": command.Reason(r.err),
		"bytes": len(payload), "sha256": hex.EncodeToString(sum[:])})
	d.log.Warn("command rejected", "verb", r.label, "reason", command.Reason(r.err), "bytes", len(payload))
	d.reply(Reply{ID: r.id, Verb: r.label, Result: "error: " + r.err.Error(), Reason: command.Reason(r.err), At: d.clk.Now().UTC()})
}

// Handle implements mqtt.Intake: a verified command, carried out by the
// engine as a center command, counted, journalled and answered. The broker
// is acknowledged once this returns.
func (ci *commandIntake) Handle(_ string, v any) {
	c := v.(verified)
	if c.m.Verb == engine.VerbReceived {
		ci.d.handleReceived(c.m)
		return
	}
	ci.d.handleCommand(c.m, c.label, c.payload)
}

func (d *Daemon) handleCommand(m command.Message, label string, payload []byte) {
	verb := m.Verb
	inc, err := d.eng.Do(engine.Command{
		ID: m.ID, Verb: verb, Incident: m.Incident, Step: m.Step, Playbook: m.Playbook, Variant: m.Variant,
		By: m.By, Origin: engine.OriginCenter, Authenticated: m.Authenticated, Reason: m.Reason,
		Records: m.Records, Impact: m.Impact, Control: m.Control, Trend: m.Trend, Other: m.Other,
		ImpactDetail: m.ImpactDetail, Action: m.Action, Participants: m.Participants, Drill: m.Drill, Input: m.Input,
		Inputs: m.Inputs, Review: reviewOf(m.Review),
	})
	if err != nil {
		// A verified command the engine refuses: journalled with its nonce,
		// so that it stays refused as a replay after a restart.
		reason := engine.Reason(err)
		d.metrics.commands.WithLabelValues(label, reason.String()).Inc()
		sum := sha256.Sum256(payload)
		d.rec.add("command_rejected", inc, "", false, map[string]any{"id": m.ID, "verb": label, "by": m.By, "reason": reason,
			"authenticated": m.Authenticated, "nonce": m.Nonce, "ts": m.TS, "bytes": len(payload), "sha256": hex.EncodeToString(sum[:])})
		d.log.Warn("command rejected", "id", m.ID, "verb", verb, "reason", reason, "err", err)
		d.reply(Reply{ID: m.ID, Verb: verb.String(), Incident: inc, Result: "error: " + err.Error(), Reason: reason, At: d.clk.Now().UTC()})
		return
	}
	d.metrics.commands.WithLabelValues(label, "ok").Inc()
	// Journal the command and wait for the commit before answering "ok":
	// commits are in order, so the reports the command made (pushed to the
	// outbox under the engine's lock, before this) are then on disk too. A
	// crash can no longer leave the center holding an "ok" for a report
	// that no journal has. Its nonce and ts keep it a replay after a
	// restart (rememberNonces).
	d.rec.addSync("command", inc, "", false, map[string]any{"id": m.ID, "verb": verb, "by": m.By, "authenticated": m.Authenticated,
		"nonce": m.Nonce, "ts": m.TS, "payload": json.RawMessage(payload)})
	d.log.Info("command", "id", m.ID, "verb", verb, "incident", inc, "by", m.By, "authenticated", m.Authenticated)
	d.reply(Reply{ID: m.ID, Verb: verb.String(), Incident: inc, Result: "ok", At: d.clk.Now().UTC()})
}

func (d *Daemon) reply(r Reply) {
	b, _ := json.Marshal(r)
	if err := d.pub.Publish("cmd/reply", b); err != nil {
		d.log.Warn("command reply not sent", "id", r.ID, "err", err)
	}
}

// handleReceived takes the center's acknowledgement of a report (a signed
// "received" command naming the report id): end-to-end delivery.
func (d *Daemon) handleReceived(m command.Message) {
	if d.centerAcks == nil || !d.centerAcks.CenterAck(m.Report) {
		// Already retired (a duplicate acknowledgement) or never ours.
		d.metrics.commands.WithLabelValues(engine.VerbReceived.String(), engine.RejectUnknownReport.String()).Inc()
		d.rec.add("command_rejected", "", "", false, map[string]any{"id": m.ID, "verb": engine.VerbReceived, "by": m.By,
			"reason": engine.RejectUnknownReport, "nonce": m.Nonce, "ts": m.TS})
		d.reply(Reply{ID: m.ID, Verb: engine.VerbReceived.String(), Result: "error: report " + m.Report + " is not awaiting acknowledgement", Reason: engine.RejectUnknownReport, At: d.clk.Now().UTC()})
		return
	}
	d.metrics.commands.WithLabelValues(engine.VerbReceived.String(), "ok").Inc()
	d.rec.add("delivered", "", "", false, map[string]any{"report": m.Report, "by": m.By, "command": m.ID, "nonce": m.Nonce, "ts": m.TS})
	d.reply(Reply{ID: m.ID, Verb: engine.VerbReceived.String(), Result: "ok", At: d.clk.Now().UTC()})
}

// tokenBucket limits how many rejections a second are journalled and
// answered, so that junk cannot grow the journal without bound.
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64 // tokens a second
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate, burst float64) *tokenBucket {
	return &tokenBucket{rate: rate, burst: burst, tokens: burst}
}

func (b *tokenBucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Rejections journalled and answered: at most rejectRate a second after a
// burst of rejectBurst (the center's own mistakes fit well inside).
const (
	rejectRate  = 5
	rejectBurst = 50
)

// droppedCollector is hallguard_commands_dropped_total: messages on cmd/
// the hall did not journal nor answer, by reason. A verified command is
// never among them.
type droppedCollector struct {
	desc *prometheus.Desc
	pub  *mqtt.Publisher
	in   *commandIntake
}

func newDroppedCollector(pub *mqtt.Publisher, in *commandIntake) *droppedCollector {
	return &droppedCollector{pub: pub, in: in, desc: prometheus.NewDesc("hallguard_commands_dropped_total",
		"Rejected messages on cmd/ neither journalled nor answered: backlog (more than 256 rejections waited), rate_limit (past the journal's rejection rate). Verified commands are never dropped.",
		[]string{"reason"}, nil)}
}

func (c *droppedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c *droppedCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.pub.Counters().DroppedCommands), "backlog")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.in.limited.Load()), "rate_limit")
}
