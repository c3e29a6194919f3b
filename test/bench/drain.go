package main

// Outbox drain after a broker outage.
//
// What raises reports while the broker is down: commands cannot reach the
// daemon then, so nothing can be resolved, and a playbook that is open is
// not raised again (a robbery latches; a generic input raises its manual
// playbook "unless already open"). The drain config therefore has one
// generic input per report wanted, each mapped to its own manual playbook
// (a copy of illness.yaml under another id, in a generated playbooks
// directory next to the ten shipped ones). During the outage the harness
// presses the next input at a steady rate; each press raises one incident
// and one "raised" report (about 2 kB), which goes to the durable outbox
// and waits there. No report is merged or coalesced, and each is a real
// incident through the engine, the journal and the publisher.
//
// mqtt.max_reconnect is 1s in this config (default 30s): the reconnect
// back-off doubles to max_reconnect during a long outage, and with 30 s the
// time to drain would mostly measure the back-off, not the outbox.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// drainPlaybooks writes the shipped playbooks plus n clones of illness.yaml
// (ids bench-0001...) into dir.
func drainPlaybooks(root, dir string, n int) error {
	src := filepath.Join(root, "configs", "playbooks")
	files, err := filepath.Glob(filepath.Join(src, "*.yaml"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if err := copyFile(filepath.Join(dir, filepath.Base(f)), f); err != nil {
			return err
		}
	}
	ill, err := os.ReadFile(filepath.Join(src, "illness.yaml"))
	if err != nil {
		return err
	}
	idRe := regexp.MustCompile(`(?m)^id: illness$`)
	for i := 1; i <= n; i++ {
		s := idRe.ReplaceAllString(string(ill), fmt.Sprintf("id: bench-%04d", i))
		if err := writeFile(filepath.Join(dir, fmt.Sprintf("bench-%04d.yaml", i)), s); err != nil {
			return err
		}
	}
	return nil
}

func drainInput(i int) string { return fmt.Sprintf("call-%04d", i) }

// drainConfigEdit adds n generic inputs, each mapped to its bench playbook.
func drainConfigEdit(playbooks string, n int) func(string) string {
	return func(s string) string {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&b, "  - {id: %s, kind: generic, line: %d, playbook: bench-%04d}\n", drainInput(i), 1000+i, i)
		}
		s = regexp.MustCompile(`(?m)^(  - \{id: box-tamper,.*\n)`).ReplaceAllString(s, "${1}"+b.String())
		s = regexp.MustCompile(`(?m)^playbooks_dir: .*$`).ReplaceAllLiteralString(s, "playbooks_dir: "+playbooks)
		return s
	}
}

type drainResult struct {
	raised      int
	outage      time.Duration
	pendingPeak int
	reconnect   time.Duration // broker accepting -> daemon connected (healthz)
	drained     time.Duration // broker accepting -> outbox empty (healthz)
	drainAck    time.Duration // daemon connected -> outbox empty
	received    int           // distinct backlog reports at the subscriber
	firstRecv   time.Duration // broker accepting -> first backlog report received
	lastRecv    time.Duration // broker accepting -> last backlog report received
	published   float64       // hallguard_reports_published_total delta
	redelivered int
	payload     int // mean report payload, bytes
}

// ackRate is reports/s from connection to empty outbox (PUBACK side).
func (r drainResult) ackRate() float64 {
	if r.drainAck <= 0 {
		return 0
	}
	return float64(r.raised) / r.drainAck.Seconds()
}

// recvRate is reports/s between the first and last receipt at the
// subscriber (through the broker, whose max_inflight_messages is 1).
func (r drainResult) recvRate() float64 {
	if span := r.lastRecv - r.firstRecv; span > 0 && r.received > 1 {
		return float64(r.received-1) / span.Seconds()
	}
	return 0
}
