package journal

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hallguard/hallguard/devices/clock"
)

// chainOf opens a store at path, appends n records and returns the head
// after each one (heads[i] is the head after record i+1).
func chainOf(t *testing.T, path string, n int) []Head {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var heads []Head
	for i := 1; i <= n; i++ {
		seqs, err := s.Append(Record{Kind: "input", Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.Get(seqs[0])
		if err != nil {
			t.Fatal(err)
		}
		h := s.Head()
		if h.Seq != r.Seq || h.Hash != r.Hash {
			t.Fatalf("Head() after record %d = %+v, want {%d %s}", i, h, r.Seq, r.Hash)
		}
		heads = append(heads, h)
	}
	return heads
}

// rewrite changes record seq's data in the closed file at path and
// recomputes the hashes of it and every later record, and the tip: what an
// attacker with the file does so that Verify still passes.
func rewrite(t *testing.T, path string, seq uint64, data string) {
	t.Helper()
	tamper(t, path, func(tx *bolt.Tx) error {
		jb := tx.Bucket(bJournal)
		prev := ""
		var last wireLink
		c := jb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			r, err := decodeRecord(k, v)
			if err != nil {
				return err
			}
			if r.Seq == seq {
				r.Data = json.RawMessage(data)
			}
			if r.Seq >= seq {
				r.Prev = prev
				r.Hash = hashRecord(&r)
				b, err := encodeRecord(&r)
				if err != nil {
					return err
				}
				if err := jb.Put(seqKey(r.Seq), b); err != nil {
					return err
				}
			}
			prev, last = r.Hash, wireLink{Seq: r.Seq, Hash: r.Hash}
		}
		tip, _ := encodeJSON(last)
		return tx.Bucket(bMeta).Put(kTip, tip)
	})
}

// truncate deletes the records after seq from the closed file at path and
// sets the tip to record seq.
func truncate(t *testing.T, path string, seq uint64) {
	t.Helper()
	tamper(t, path, func(tx *bolt.Tx) error {
		jb := tx.Bucket(bJournal)
		v := jb.Get(seqKey(seq))
		r, err := decodeRecord(seqKey(seq), v)
		if err != nil {
			return err
		}
		for k, _ := jb.Cursor().Seek(seqKey(seq + 1)); k != nil; k, _ = jb.Cursor().Seek(seqKey(seq + 1)) {
			if err := jb.Delete(k); err != nil {
				return err
			}
		}
		tip, _ := encodeJSON(wireLink{Seq: r.Seq, Hash: r.Hash})
		return tx.Bucket(bMeta).Put(kTip, tip)
	})
}

func verifyAgainst(t *testing.T, path string, anchors []Head) (VerifyResult, AnchorResult) {
	t.Helper()
	s, err := OpenReadOnly(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Verify()
	if err != nil {
		t.Fatal(err)
	}
	ar, err := s.CheckAnchors(anchors)
	if err != nil {
		t.Fatal(err)
	}
	return res, ar
}

func TestAnchorsDetectRewrittenTail(t *testing.T) {
	path := dbPath(t)
	heads := chainOf(t, path, 10)
	anchors := []Head{heads[9], heads[2], heads[6], heads[4]} // seq 10, 3, 7, 5; any order
	if _, ar := verifyAgainst(t, path, anchors); ar.FirstBad != 0 || ar.Checked != 4 {
		t.Fatalf("intact chain: %+v, want 4 anchors checked, none bad", ar)
	}
	rewrite(t, path, 6, `{"i":"rewritten"}`)
	res, ar := verifyAgainst(t, path, anchors)
	if res.FirstBad != 0 {
		t.Fatalf("precondition: the rewrite must pass Verify alone, got %+v", res)
	}
	if ar.FirstBad != 7 || ar.Agree != 5 || !strings.Contains(ar.Reason, heads[6].Hash) {
		t.Fatalf("CheckAnchors = %+v; want record 7 named as the first anchored record that disagrees, 5 the last that agrees, and the center's hash", ar)
	}
}

func TestAnchorsDetectTruncatedTail(t *testing.T) {
	path := dbPath(t)
	heads := chainOf(t, path, 10)
	truncate(t, path, 7)
	res, ar := verifyAgainst(t, path, []Head{heads[4], heads[9]})
	if res.FirstBad != 0 || res.Last != 7 {
		t.Fatalf("precondition: the truncated chain must pass Verify alone, got %+v", res)
	}
	if ar.FirstBad != 8 || ar.Agree != 5 || !strings.Contains(ar.Reason, "missing") {
		t.Fatalf("CheckAnchors = %+v; want record 8 named missing (the center holds head 10)", ar)
	}
}

// TestAnchorsOnPrunedRecordsReadOnly: `hallguard journal verify -anchor`
// reads the file read-only (OpenReadOnly); anchors that name records
// Compact pruned (JournalRetention) are counted as pruned, not as records
// missing from the journal.
func TestAnchorsOnPrunedRecordsReadOnly(t *testing.T) {
	clk := clock.NewFake(t0)
	path := dbPath(t)
	s := openT(t, path, Options{Clock: clk, JournalRetention: time.Hour})
	var heads []Head
	for i := 1; i <= 8; i++ {
		if i == 6 {
			clk.Advance(2 * time.Hour)
		}
		if _, err := s.Append(Record{Kind: "input", Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
		heads = append(heads, s.Head())
	}
	if n, err := s.Compact(clk.Now()); err != nil || n != 5 {
		t.Fatalf("Compact = %d, %v; want the 5 records older than JournalRetention pruned", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	res, ar := verifyAgainst(t, path, []Head{heads[2], heads[7]}) // seq 3 (pruned), 8
	if res.FirstBad != 0 {
		t.Fatalf("precondition: the pruned chain must pass Verify, got %+v", res)
	}
	if ar.FirstBad != 0 || ar.Pruned != 1 || ar.Checked != 1 || ar.Agree != 8 {
		t.Fatalf("CheckAnchors = %+v; want the anchor on pruned record 3 counted as pruned, record 8 checked, none bad", ar)
	}
}

func TestHeadSignatures(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	hmacKey := []byte(strings.Repeat("k", 32))
	for _, tc := range []struct {
		name         string
		sign, verify HeadKey
	}{
		{"hmac", HMACHeadKey(hmacKey), HMACHeadKey(hmacKey)},
		{"ed25519", Ed25519HeadKey(priv), Ed25519HeadVerifier(pub)},
	} {
		m := HeadMessage{Hall: "h1", Seq: 42, Hash: strings.Repeat("ab", 32), At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
		if err := tc.sign.Sign(&m); err != nil {
			t.Fatalf("%s: sign: %v", tc.name, err)
		}
		if err := tc.verify.Verify(m); err != nil {
			t.Errorf("%s: a good signature: %v", tc.name, err)
		}
		forged := m
		forged.Seq = 41
		if err := tc.verify.Verify(forged); !errors.Is(err, ErrBadHeadSignature) {
			t.Errorf("%s: changed seq: %v, want ErrBadHeadSignature", tc.name, err)
		}
	}
	m := HeadMessage{Hall: "h1", Seq: 1, Hash: strings.Repeat("0", 64), At: time.Now()}
	if err := Ed25519HeadKey(otherPriv).Sign(&m); err != nil {
		t.Fatal(err)
	}
	if err := Ed25519HeadVerifier(pub).Verify(m); !errors.Is(err, ErrBadHeadSignature) {
		t.Errorf("another box's key: %v, want ErrBadHeadSignature", err)
	}
}

// TestSnapshotWhileLocked: `journal verify` beside a running daemon reads
// the file itself (a snapshot) instead of asking the daemon to vouch for
// its own archive.
func TestSnapshotWhileLocked(t *testing.T) {
	path := dbPath(t)
	s := openT(t, path, Options{})
	for i := 0; i < 25; i++ {
		if _, err := s.Append(Record{Kind: "input", Data: json.RawMessage(`{"i":1}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := OpenReadOnly(path, 50*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("precondition: read-only open beside the writer: %v, want ErrLocked", err)
	}
	snap, err := OpenSnapshot(path)
	if err != nil {
		t.Fatalf("OpenSnapshot beside the writer: %v", err)
	}
	res, err := snap.Verify()
	if err != nil || res.FirstBad != 0 || res.Records != 25 || res.LastHash != s.Head().Hash {
		t.Fatalf("snapshot Verify = %+v, %v; want 25 good records ending at %+v", res, err, s.Head())
	}
	copyPath := snap.Path()
	if err := snap.Close(); err != nil {
		t.Fatal(err)
	}
	if copyPath == path {
		t.Fatalf("the snapshot is the file itself")
	}
	if _, err := os.Stat(copyPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("snapshot copy %s left behind: %v", copyPath, err)
	}
	if _, err := s.Append(Record{Kind: "input", Data: json.RawMessage(`{"i":2}`)}); err != nil {
		t.Fatalf("the writer after the snapshot: %v", err)
	}

	// Snapshots taken while the writer commits are each a sound chain.
	stop := make(chan struct{})
	wrote := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				wrote <- nil
				return
			default:
			}
			if _, err := s.Append(Record{Kind: "input", Data: json.RawMessage(`{"busy":true}`)}); err != nil {
				wrote <- err
				return
			}
		}
	}()
	for i := 0; i < 5; i++ {
		snap, err := OpenSnapshot(path)
		if err != nil {
			t.Fatalf("snapshot %d while committing: %v", i, err)
		}
		res, err := snap.Verify()
		snap.Close()
		if err != nil || res.FirstBad != 0 || res.Records < 26 {
			t.Fatalf("snapshot %d while committing: Verify = %+v, %v", i, res, err)
		}
	}
	close(stop)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(os.TempDir(), "hallguard-journal-*.db")); len(m) > 0 {
		t.Logf("note: other snapshot copies in %s: %v", os.TempDir(), m) // other runs may hold some
	}
}
