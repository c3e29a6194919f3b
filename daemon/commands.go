package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/mqtt/command"
)

// Reply is what the daemon publishes on cmd/reply for every command.
type Reply struct {
	ID       string    `json:"id"`
	Verb     string    `json:"verb"`
	Incident string    `json:"incident,omitempty"`
	Result   string    `json:"result"` // "ok" or "error: reason"
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
}

// ReadKey reads a command key file (a systemd credential works): its
// contents less surrounding white space, at least 16 bytes.
func ReadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("command key: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < 16 {
		return nil, fmt.Errorf("command key %s: %d bytes is too short (at least 16)", path, len(b))
	}
	return b, nil
}

func newVerifier(d *Daemon) (*command.Verifier, error) {
	v := &command.Verifier{Window: d.cfg.Commands.Window.D(), MaxSize: d.cfg.Commands.MaxPayload, Clock: d.clk}
	if d.cfg.Commands.Auth == "hmac" {
		key, err := ReadKey(d.cfg.Path(d.cfg.Commands.KeyFile))
		if err != nil {
			return nil, fmt.Errorf("daemon: %w", err)
		}
		v.Key = key
	}
	return v, nil
}

// handleCommand answers one message on cmd/<verb>: verified, carried out by
// the engine as a center command, counted and answered on cmd/reply.
func (d *Daemon) handleCommand(topic string, payload []byte) {
	verb := strings.TrimPrefix(topic, "cmd/")
	if verb == "reply" {
		return // our own answers
	}
	if verb == "received" && d.centerAcks != nil && topic == d.cfg.MQTT.AckTopic {
		d.handleReceived(payload)
		return
	}
	label := verb
	if !knownVerb(verb) {
		label = "unknown" // label values never come from payloads or topics
	}
	m, err := d.verifier.Verify(verb, payload)
	if err != nil {
		d.reject(label, m.ID, verb, "", command.Reason(err), err, payload)
		return
	}
	inc, err := d.eng.Do(engine.Command{
		ID: m.ID, Verb: verb, Incident: m.Incident, Step: m.Step, Playbook: m.Playbook, Variant: m.Variant,
		By: m.By, Origin: engine.OriginCenter, Authenticated: m.Authenticated, Reason: m.Reason,
		Records: m.Records, Impact: m.Impact, Control: m.Control, Trend: m.Trend, Other: m.Other,
		ImpactDetail: m.ImpactDetail, Action: m.Action, Participants: m.Participants, Drill: m.Drill, Input: m.Input,
		Inputs: m.Inputs, Review: reviewOf(m.Review),
	})
	if err != nil {
		d.reject(label, m.ID, verb, inc, engine.Reason(err), err, payload)
		return
	}
	d.metrics.commands.WithLabelValues(label, "ok").Inc()
	// Journal the command and wait for the commit before answering "ok":
	// commits are in order, so the reports the command made (pushed to the
	// outbox under the engine's lock, before this) are then on disk too. A
	// crash can no longer leave the center holding an "ok" for a report
	// that no journal has.
	d.rec.addSync("command", inc, "", false, map[string]any{"id": m.ID, "verb": verb, "by": m.By, "authenticated": m.Authenticated,
		"payload": json.RawMessage(payload)})
	d.log.Info("command", "id", m.ID, "verb", verb, "incident", inc, "by", m.By, "authenticated", m.Authenticated)
	d.reply(Reply{ID: m.ID, Verb: verb, Incident: inc, Result: "ok", At: d.clk.Now().UTC()})
}

func (d *Daemon) reject(label, id, verb, inc, reason string, err error, payload []byte) {
	d.metrics.commands.WithLabelValues(label, reason).Inc()
	rec := map[string]any{"id": id, "verb": label, "reason": reason, "error": err.Error(), "bytes": len(payload)}
	if json.Valid(payload) && len(payload) <= d.cfg.Commands.MaxPayload {
		rec["payload"] = json.RawMessage(payload)
	}
	d.rec.add("command_rejected", inc, "", false, rec)
	d.log.Warn("command rejected", "id", id, "verb", verb, "reason", reason, "err", err)
	d.reply(Reply{ID: id, Verb: verb, Incident: inc, Result: "error: " + err.Error(), Reason: reason, At: d.clk.Now().UTC()})
}

func (d *Daemon) reply(r Reply) {
	b, _ := json.Marshal(r)
	if err := d.pub.Publish("cmd/reply", b); err != nil {
		d.log.Warn("command reply not sent", "id", r.ID, "err", err)
	}
}

func knownVerb(v string) bool {
	for _, k := range command.Verbs {
		if k == v {
			return true
		}
	}
	return false
}

// CommandReasons lists every result label of hallguard_commands_total.
var CommandReasons = []string{"ok", "too_large", "bad_payload", "unknown_verb", "unsigned", "bad_signature",
	"expired", "replay", "unknown_incident", "not_allowed"}

// handleReceived takes the center's acknowledgement of a report (a signed
// "received" command naming the report id): end-to-end delivery.
func (d *Daemon) handleReceived(payload []byte) {
	m, err := d.verifier.Verify("received", payload)
	if err == nil && m.Report == "" {
		err = fmt.Errorf("%w: received names no report", command.ErrBadPayload)
	}
	if err != nil {
		d.reject("received", m.ID, "received", "", command.Reason(err), err, payload)
		return
	}
	if !d.centerAcks.CenterAck(m.Report) {
		// Already retired (a duplicate acknowledgement) or never ours.
		d.metrics.commands.WithLabelValues("received", "unknown_report").Inc()
		d.reply(Reply{ID: m.ID, Verb: "received", Result: "error: report " + m.Report + " is not awaiting acknowledgement", Reason: "unknown_report", At: d.clk.Now().UTC()})
		return
	}
	d.metrics.commands.WithLabelValues("received", "ok").Inc()
	d.rec.add("delivered", "", "", false, map[string]any{"report": m.Report, "by": m.By, "command": m.ID})
	d.reply(Reply{ID: m.ID, Verb: "received", Result: "ok", At: d.clk.Now().UTC()})
}
