//go:build security

package test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// storedRecord is a journal record as stored (and exported): the JSON
// field order is the canonical encoding (daemon/journal Record docs).
type storedRecord struct {
	Seq      uint64          `json:"seq"`
	Time     string          `json:"time"`
	Kind     string          `json:"kind"`
	Incident string          `json:"incident"`
	Playbook string          `json:"playbook"`
	Drill    bool            `json:"drill"`
	Data     json.RawMessage `json:"data"`
	Prev     string          `json:"prev"`
	Hash     string          `json:"hash"`
}

// auditorHash is the documented record hash: SHA-256 over nine netstrings.
func auditorHash(r storedRecord) string {
	var b []byte
	for _, f := range []string{"hallguard.journal.v1", strconv.FormatUint(r.Seq, 10), r.Time, r.Kind, r.Incident,
		r.Playbook, strconv.FormatBool(r.Drill), string(r.Data), r.Prev} {
		b = append(b, strconv.Itoa(len(f))...)
		b = append(b, ':')
		b = append(b, f...)
		b = append(b, ',')
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func encodeStored(r storedRecord) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(r)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// tamper opens the stopped daemon's journal as an attacker with the file
// would, lets edit change the records (in seq order; it returns the records
// to keep), recomputes every hash from the first change on, and sets the
// tip, so that the chain is sound again.
func tamper(t *testing.T, db string, edit func([]storedRecord) []storedRecord) {
	t.Helper()
	b, err := bolt.Open(db, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Update(func(tx *bolt.Tx) error {
		jb := tx.Bucket([]byte("journal"))
		var recs []storedRecord
		if err := jb.ForEach(func(k, v []byte) error {
			var r storedRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			recs = append(recs, r)
			return nil
		}); err != nil {
			return err
		}
		kept := edit(recs)
		for _, r := range recs[len(kept):] {
			var k [8]byte
			binary.BigEndian.PutUint64(k[:], r.Seq)
			if err := jb.Delete(k[:]); err != nil {
				return err
			}
		}
		prev := strings.Repeat("0", 64)
		for i := range kept {
			kept[i].Prev = prev
			kept[i].Hash = auditorHash(kept[i])
			prev = kept[i].Hash
			var k [8]byte
			binary.BigEndian.PutUint64(k[:], kept[i].Seq)
			if err := jb.Put(k[:], encodeStored(kept[i])); err != nil {
				return err
			}
		}
		last := kept[len(kept)-1]
		tip, _ := json.Marshal(map[string]any{"seq": last.Seq, "hash": last.Hash})
		return tx.Bucket([]byte("meta")).Put([]byte("tip"), tip)
	})
	if err != nil {
		t.Fatalf("tamper: %v", err)
	}
}

// archiveRun is a daemon that raised a robbery and then a fire, and the
// messages the center kept: every report and journal/head, one JSON
// message per line, the center's anchors.
type archiveRun struct {
	d       *daemonProc
	db      string
	anchors string
	heads   []uint64 // the seqs the anchors name
}

func runAndArchive(t *testing.T) *archiveRun {
	t.Helper()
	d := startDaemon(t, "configs/demo.yaml")
	sub := subscribe(t, d.mqtt, demoRoot+"/#")
	d.sim("press", "panic-teller-1")
	sub.wait(t, 10*time.Second, func(m message) bool { return m.Topic == demoRoot+"/alerts/robbery" })
	d.sim("press", "callpoint-exit")
	sub.wait(t, 10*time.Second, func(m message) bool { return m.Topic == demoRoot+"/alerts/fire" })
	d.stop()

	a := &archiveRun{d: d, db: filepath.Join(d.stateDir, "hallguard.db"), anchors: filepath.Join(t.TempDir(), "center-heads.jsonl")}
	var lines []string
	for _, m := range sub.all() {
		if !strings.Contains(m.Topic, "/alerts/") && !strings.HasSuffix(m.Topic, "/journal/head") {
			continue
		}
		var h struct {
			Seq     uint64 `json:"seq"`
			Journal *struct {
				Seq uint64 `json:"seq"`
			} `json:"journal"`
		}
		_ = json.Unmarshal(m.Payload, &h)
		if strings.HasSuffix(m.Topic, "/journal/head") {
			a.heads = append(a.heads, h.Seq)
		} else if h.Journal != nil {
			a.heads = append(a.heads, h.Journal.Seq)
		}
		lines = append(lines, string(m.Payload))
	}
	if err := os.WriteFile(a.anchors, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return a
}

// firstAnchorFrom is the smallest anchored seq at or after seq.
func (a *archiveRun) firstAnchorFrom(t *testing.T, seq uint64) uint64 {
	t.Helper()
	best := uint64(0)
	for _, h := range a.heads {
		if h >= seq && (best == 0 || h < best) {
			best = h
		}
	}
	if best == 0 {
		t.Fatalf("no anchor at or after record %d (anchors %v): the center holds nothing to check it against", seq, a.heads)
	}
	return best
}

func (a *archiveRun) verify(t *testing.T, extra ...string) (string, error) {
	t.Helper()
	args := append([]string{"journal", "verify", "-config", a.d.config, "-file", a.db}, extra...)
	cmd := exec.Command(hallguardBin(t), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// firstRobberyReport is the seq of the robbery's first report record.
func firstRobberyReport(t *testing.T, recs []storedRecord) int {
	t.Helper()
	for i, r := range recs {
		if r.Kind == "report" && r.Playbook == "robbery" {
			return i
		}
	}
	t.Fatal("no robbery report record in the journal")
	return 0
}

func TestSecurityRewrittenTailVsAnchor(t *testing.T) {
	a := runAndArchive(t)
	var changed uint64
	tamper(t, a.db, func(recs []storedRecord) []storedRecord {
		i := firstRobberyReport(t, recs)
		// The robbery never happened: the report now says false alarm.
		recs[i].Data = json.RawMessage(strings.Replace(string(recs[i].Data), `"state":"active"`, `"state":"resolved"`, 1))
		changed = recs[i].Seq
		return recs
	})
	if out, err := a.verify(t); err != nil || !strings.Contains(out, "ok") {
		t.Fatalf("precondition: the rewritten chain must pass a plain verify (that is the attack): %v\n%s", err, out)
	}
	want := a.firstAnchorFrom(t, changed)
	out, err := a.verify(t, "-anchor", a.anchors)
	if err == nil || !strings.Contains(out, fmt.Sprintf("record %d ", want)) {
		t.Fatalf("journal verify -anchor on a rewritten tail (record %d changed, first anchor after it %d): %v\n%s", changed, want, err, out)
	}
	attack(t, fmt.Sprintf("rewrote record %d (robbery report) with every later hash and the tip recomputed", changed),
		fmt.Sprintf("plain verify ok; verify -anchor: %s", strings.TrimSpace(out)))
}

func TestSecurityTruncatedTailVsAnchor(t *testing.T) {
	a := runAndArchive(t)
	var kept uint64
	tamper(t, a.db, func(recs []storedRecord) []storedRecord {
		i := firstRobberyReport(t, recs)
		kept = recs[i-1].Seq
		return recs[:i] // the robbery's reports and all after them gone
	})
	if out, err := a.verify(t); err != nil || !strings.Contains(out, "ok") {
		t.Fatalf("precondition: the truncated chain must pass a plain verify (that is the attack): %v\n%s", err, out)
	}
	out, err := a.verify(t, "-anchor", a.anchors)
	if err == nil || !strings.Contains(out, fmt.Sprintf("record %d ", kept+1)) || !strings.Contains(out, "missing") {
		t.Fatalf("journal verify -anchor on a journal cut after record %d: %v\n%s", kept, err, out)
	}
	attack(t, fmt.Sprintf("cut the journal after record %d (the robbery's reports and everything after), tip reset", kept),
		fmt.Sprintf("plain verify ok; verify -anchor: %s", strings.TrimSpace(out)))
}

// TestSecurityVerifyDoesNotAskTheDaemon: beside a running daemon, `journal
// verify` read the daemon's own answer from its HTTP API: a daemon (or
// whatever listens on http.listen) vouched for its own archive.
func TestSecurityVerifyDoesNotAskTheDaemon(t *testing.T) {
	liar, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"Records":99999,"FirstBad":0,"Last":99999,"LastHash":"%s"}`, strings.Repeat("f", 64))
	})}
	go srv.Serve(liar)
	defer srv.Close()
	cfg := demoConfigCopy(t, func(s string) string {
		return strings.Replace(s, "  listen: 127.0.0.1:9464", "  listen: "+liar.Addr().String(), 1)
	})
	d := startDaemon(t, cfg)
	d.sim("press", "panic-teller-1")
	out, err := d.hg("journal", "verify", "-config", cfg, "-file", filepath.Join(d.stateDir, "hallguard.db"))
	if err != nil || strings.Contains(out, "99999") || !strings.Contains(out, "ok") {
		t.Fatalf("journal verify beside the daemon: %v\n%s", err, out)
	}
	// The retained journal/head, signed with the demo's command key, as the
	// anchor: read from the broker by topic, beside the running daemon. The
	// daemon publishes the head within a second of a change; until then the
	// broker holds the start's head (seq 0, nothing to check against).
	waitHeadNamesARecord(t, d.mqtt)
	anchored, err := d.hg("journal", "verify", "-config", cfg, "-file", filepath.Join(d.stateDir, "hallguard.db"),
		"-anchor", demoRoot+"/journal/head", "-broker", "tcp://"+d.mqtt)
	if err != nil || !strings.Contains(anchored, "1 signed") {
		t.Fatalf("journal verify -anchor TOPIC beside the daemon: %v\nstdout: %s", err, anchored)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Scan()
	attack(t, "journal verify while the daemon runs, with http.listen answering a forged \"intact, 99999 records\"",
		"read the file itself: "+sc.Text())
}

// waitHeadNamesARecord waits until the head retained on journal/head names
// a record (seq > 0).
func waitHeadNamesARecord(t *testing.T, broker string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var h struct {
			Seq uint64 `json:"seq"`
		}
		raw := retainedOn(t, broker, demoRoot+"/journal/head")
		if json.Unmarshal([]byte(raw), &h) == nil && h.Seq > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("journal/head still names no record after 20s: %q", raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
