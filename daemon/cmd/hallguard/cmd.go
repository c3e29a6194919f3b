package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/mqtt/command"
)

// cmdCmd signs a command, sends it on cmd/<verb> and prints the reply: the
// reference client for the monitoring center.
//
//	hallguard cmd ack      -incident ID -by NAME
//	hallguard cmd resolve  -incident ID -by NAME
//	hallguard cmd false_alarm -incident ID -by NAME -reason TEXT
//	hallguard cmd step     -incident ID -step STEP -by NAME [-records a,b]
//	hallguard cmd trigger  -playbook ID [-variant V] -by NAME
//	hallguard cmd report   -incident ID -by NAME [-impact ..] [-control ..] [-trend ..] [-other ..]
func cmdCmd(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("cmd", stderr)
	send := newSendFlags(fs, "signing key: the center's Ed25519 private key (PEM), or the HMAC key (default: the config's commands.key_file with auth hmac)")
	var m command.Message
	fs.StringVar(&m.ID, "id", "", "command id (default: random)")
	fs.StringVar(&m.By, "by", "", "who is acting (required)")
	fs.StringVar(&m.Incident, "incident", "", "incident id")
	fs.StringVar(&m.Step, "step", "", "step id (step)")
	fs.StringVar(&m.Playbook, "playbook", "", "playbook id (trigger)")
	fs.StringVar(&m.Variant, "variant", "", "playbook variant (trigger)")
	fs.StringVar(&m.Reason, "reason", "", "reason (false_alarm, trigger)")
	records := fs.String("records", "", "what the step records, comma-separated")
	var impact, control, trend, other optString
	fs.Var(&impact, "impact", "report update: impact (§3.3 4)")
	fs.Var(&control, "control", "report update: control (§3.3 5)")
	fs.Var(&trend, "trend", "report update: trend (§3.3 6)")
	fs.Var(&other, "other", "report update: other (§3.3 7)")
	verbs := make([]string, 0, len(engine.Verbs))
	for _, v := range engine.Verbs {
		verbs = append(verbs, v.String())
	}
	setUsage(fs, fmt.Sprintf("usage: hallguard cmd VERB [flags]   (verbs: %s)", strings.Join(verbs, ", ")), stderr)
	verb, ok := parseLeading(fs, args)
	if !ok {
		return exitConfig
	}
	if *records != "" {
		m.Records = strings.Split(*records, ",")
	}
	m.Impact, m.Control, m.Trend, m.Other = impact.p, control.p, trend.p, other.p
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return exitConfig
	}
	return sendSigned(cfg, verb, m, send, stdout, stderr)
}

// optString is a flag that distinguishes "not given" from "".
type optString struct{ p *string }

func (o *optString) String() string {
	if o.p == nil {
		return ""
	}
	return *o.p
}
func (o *optString) Set(s string) error { o.p = &s; return nil }
