package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hallguard/hallguard/daemon"
	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/journal"
	"github.com/hallguard/hallguard/mqtt"
)

// anchors are the chain heads the center holds, read for `hallguard journal
// verify -anchor` (issue #12 §5).
type anchors struct {
	heads    []journal.Head
	signed   int // head messages whose signature verified
	unsigned int // reports, and head messages of a hall without a key
	other    int // messages of another hall, skipped
}

// readAnchors reads anchors from spec: a file when one exists at that path
// (one JSON message per line: reports as the center received them, with
// their "journal" head, and journal/head messages), else an MQTT topic or
// filter whose retained messages are read from brokerURL. Head messages are
// checked with key; one that does not verify is an error: it is not this
// box's, or was changed.
func readAnchors(cfg *config.Config, spec, brokerURL string, key journal.HeadKey) (anchors, error) {
	var a anchors
	if _, err := os.Stat(spec); err == nil {
		b, err := os.ReadFile(spec)
		if err != nil {
			return a, err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for n := 1; sc.Scan(); n++ {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			if err := a.add(line, cfg.Hall.ID, key); err != nil {
				return a, fmt.Errorf("%s:%d: %w", spec, n, err)
			}
		}
		return a, sc.Err()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := mqtt.Retained(ctx, brokerURL, spec)
	if err != nil {
		return a, err
	}
	if len(msgs) == 0 {
		return a, fmt.Errorf("no retained message on %s at %s (and no such file)", spec, brokerURL)
	}
	for _, m := range msgs {
		if err := a.add(m.Payload, cfg.Hall.ID, key); err != nil {
			return a, fmt.Errorf("%s: %w", m.Topic, err)
		}
	}
	return a, nil
}

// add takes one message: a report (its "journal" head) or a journal/head
// message.
func (a *anchors) add(b []byte, hall string, key journal.HeadKey) error {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return fmt.Errorf("not a JSON message: %w", err)
	}
	if _, ok := probe["journal"]; ok { // a report (mqtt.ReportPayload)
		var r mqtt.ReportPayload
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		if r.Hall.ID != hall {
			a.other++
			return nil
		}
		if r.Journal != nil {
			a.heads = append(a.heads, journal.Head{Seq: r.Journal.Seq, Hash: r.Journal.Hash})
			a.unsigned++
		}
		return nil
	}
	if _, ok := probe["alg"]; !ok {
		return nil // a message that carries no head (an old report, a status)
	}
	var m journal.HeadMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("journal/head message: %w", err)
	}
	if m.Hall != hall {
		a.other++
		return nil
	}
	switch {
	case key.Alg() == journal.HeadAlgNone && m.Alg == journal.HeadAlgNone:
		a.unsigned++
	case key.Alg() == journal.HeadAlgNone:
		return fmt.Errorf("head %d is signed (%s) but this config has no key to check it (journal.head_key_file or commands.key_file)", m.Seq, m.Alg)
	default:
		if err := key.Verify(m); err != nil {
			return fmt.Errorf("head %d: %w: not this box's head, or changed", m.Seq, err)
		}
		a.signed++
	}
	a.heads = append(a.heads, journal.Head{Seq: m.Seq, Hash: m.Hash})
	return nil
}

// verifyAnchored runs `journal verify [-anchor SPEC]` on st and prints the
// outcome; the exit code is 0 only when the chain is intact and agrees with
// every anchor.
func verifyAnchored(cfg *config.Config, st *journal.Store, file, spec, brokerURL string, stdout, stderr io.Writer) int {
	res, err := st.Verify()
	if err != nil {
		fmt.Fprintln(stderr, "hallguard journal verify:", err)
		return exitFail
	}
	if res.FirstBad != 0 {
		fmt.Fprintf(stdout, "%s: BROKEN at record %d: %s (%d records before it are intact)\n", file, res.FirstBad, res.Reason, res.FirstBad-1)
		return exitFail
	}
	if spec == "" {
		fmt.Fprintf(stdout, "%s: ok: %d records, chain intact up to seq %d (hash %s); not checked against the center's heads (-anchor)\n", file, res.Records, res.Last, res.LastHash)
		return exitOK
	}
	key, err := daemon.HeadKey(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "hallguard journal verify:", err)
		return exitConfig
	}
	a, err := readAnchors(cfg, spec, brokerURL, key)
	if err != nil {
		fmt.Fprintln(stderr, "hallguard journal verify: -anchor:", err)
		return exitFail
	}
	if len(a.heads) == 0 {
		fmt.Fprintf(stderr, "hallguard journal verify: -anchor %s: no head of hall %s in it (%d of other halls)\n", spec, cfg.Hall.ID, a.other)
		return exitFail
	}
	named := 0
	for _, h := range a.heads {
		if h.Seq > 0 {
			named++
		}
	}
	if named == 0 {
		fmt.Fprintf(stderr, "hallguard journal verify: -anchor %s: its %d heads name no record (seq 0: the journal was empty then)\n", spec, len(a.heads))
		return exitFail
	}
	ar, err := st.CheckAnchors(a.heads)
	if err != nil {
		fmt.Fprintln(stderr, "hallguard journal verify:", err)
		return exitFail
	}
	if ar.FirstBad != 0 {
		fmt.Fprintf(stdout, "%s: DISAGREES with the center: first record that disagrees is record %d (%s); records up to %d agree with the center's heads\n",
			file, ar.FirstBad, ar.Reason, ar.Agree)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s: ok: %d records, chain intact up to seq %d (hash %s); agrees with the center's %d heads up to seq %d (%d signed, %d unsigned, %d pruned here)\n",
		file, res.Records, res.Last, res.LastHash, ar.Checked, ar.Agree, a.signed, a.unsigned, ar.Pruned)
	if ar.Checked == 0 && ar.Pruned == 0 {
		return exitFail
	}
	return exitOK
}
