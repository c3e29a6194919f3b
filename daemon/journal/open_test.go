package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/outbox"
)

// fill writes n records and pushes p reports (unacknowledged) to a new
// database at path and closes it.
func fill(t *testing.T, path string, n, p int) []string {
	t.Helper()
	s, err := Open(path, Options{Clock: clock.NewFake(t0)})
	if err != nil {
		t.Fatal(err)
	}
	var recs []Record
	for i := range n {
		recs = append(recs, Record{Kind: "input", Data: json.RawMessage(`{"i":` + strings.Repeat("1", i%50+1) + `}`)})
	}
	if _, err := s.Append(recs...); err != nil {
		t.Fatal(err)
	}
	var pushed []string
	for i := range p {
		s.Outbox().Push(message(i))
		pushed = append(pushed, message(i).ID)
	}
	waitFor(t, "pushes durable", func() bool { return len(s.Outbox().Peek(p)) == p })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return pushed
}

func TestOpenDamagedFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		// damage the closed database at path; return the reports that must
		// be salvaged (nil: no expectation beyond "no crash").
		damage       func(t *testing.T, path string) []string
		wantSalvaged bool
	}{
		{"garbage", func(t *testing.T, path string) []string {
			b := make([]byte, 20000)
			r := rand.New(rand.NewPCG(1, 2))
			for i := range b {
				b[i] = byte(r.UintN(256))
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return nil
		}, false},
		{"short garbage", func(t *testing.T, path string) []string {
			if err := os.WriteFile(path, []byte("hallguard?"), 0o600); err != nil {
				t.Fatal(err)
			}
			return nil
		}, false},
		{"truncated to half", func(t *testing.T, path string) []string {
			fill(t, path, 400, 30)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
			return nil
		}, false},
		{"last record changed", func(t *testing.T, path string) []string {
			pushed := fill(t, path, 10, 5)
			tamper(t, path, func(tx *bolt.Tx) error {
				jb := tx.Bucket(bJournal)
				k, v := jb.Cursor().Last()
				v = bytes.Replace(v, []byte(`"drill":false`), []byte(`"drill":true`), 1)
				return jb.Put(k, v)
			})
			return pushed
		}, true},
		{"tip in meta does not match", func(t *testing.T, path string) []string {
			pushed := fill(t, path, 10, 3)
			tamper(t, path, func(tx *bolt.Tx) error {
				return tx.Bucket(bJournal).Delete(seqKey(13))
			})
			return pushed
		}, true},
		{"unreadable outbox entry", func(t *testing.T, path string) []string {
			pushed := fill(t, path, 3, 4)
			tamper(t, path, func(tx *bolt.Tx) error {
				return tx.Bucket(bOutbox).Put(seqKey(2), []byte(`{"id":`))
			})
			return []string{pushed[0], pushed[2], pushed[3]}
		}, true},
		{"another application's bbolt file", func(t *testing.T, path string) []string {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("settings"))
				if err != nil {
					return err
				}
				return b.Put([]byte("k"), []byte("v"))
			}); err != nil {
				t.Fatal(err)
			}
			db.Close()
			return nil
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := dbPath(t)
			salvage := tc.damage(t, path)
			bad, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			clk := clock.NewFake(t0.Add(time.Hour))
			s := openT(t, path, Options{Clock: clk})
			rec := s.Recovered()
			if rec == nil {
				t.Fatal("Recovered is nil")
			}
			t.Logf("%v", rec)
			if want := path + ".corrupt-20250301T091502Z"; rec.MovedTo != want {
				t.Errorf("moved to %s, want %s", rec.MovedTo, want)
			}
			if moved, err := os.ReadFile(rec.MovedTo); err != nil || !bytes.Equal(moved, bad) {
				t.Fatalf("the damaged file is not kept as it was at %s: %v", rec.MovedTo, err)
			}
			first, err := s.Get(1)
			if err != nil || first.Kind != "trouble" || !bytes.Contains(first.Data, []byte(`"journal_recovered"`)) ||
				!bytes.Contains(first.Data, []byte(filepath.Base(rec.MovedTo))) {
				t.Fatalf("first record of the new journal: %+v, %v", first, err)
			}
			got := s.Outbox().Peek(1000)
			if tc.wantSalvaged {
				if !reflect.DeepEqual(ids(got), salvage) || !allRedelivered(got) || rec.Salvaged != len(salvage) {
					t.Fatalf("salvaged %v (%d), want %v", ids(got), rec.Salvaged, salvage)
				}
			}
			res, err := s.Verify()
			if err != nil || res.FirstBad != 0 || res.Records != uint64(1+len(got)) {
				t.Fatalf("Verify of the new journal = %+v, %v", res, err)
			}
			if _, err := s.Append(Record{Kind: "input"}); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// The next start finds a sound file: no second recovery.
			s = openT(t, path, Options{Clock: clk})
			if r := s.Recovered(); r != nil {
				t.Fatalf("second Open recovered again: %v", r)
			}
			if got2 := s.Outbox().Peek(1000); !reflect.DeepEqual(ids(got2), ids(got)) {
				t.Fatalf("salvaged reports not kept: %v, want %v", ids(got2), ids(got))
			}
		})
	}
}

// tamper changes a closed database with bbolt directly.
func tamper(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenEmptyFileIsNotDamage(t *testing.T) {
	path := dbPath(t)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := openT(t, path, Options{})
	if r := s.Recovered(); r != nil {
		t.Fatalf("an empty file was recovered: %v", r)
	}
	if _, err := s.Append(Record{Kind: "input"}); err != nil {
		t.Fatal(err)
	}
}

// TestOpenLocked: a second Open of a database in use fails fast with
// ErrLocked and changes nothing.
func TestOpenLocked(t *testing.T) {
	path := dbPath(t)
	s := openT(t, path, Options{})
	if _, err := s.Append(Record{Kind: "input"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s2, err := Open(path, Options{OpenTimeout: 200 * time.Millisecond})
	elapsed := time.Since(start)
	if !errors.Is(err, ErrLocked) || s2 != nil {
		t.Fatalf("second Open: %v, %v; want ErrLocked", s2, err)
	}
	t.Logf("second Open failed after %v: %v", elapsed, err)
	if elapsed > 20*time.Second { // a hang, not a timing assertion
		t.Fatalf("second Open took %v", elapsed)
	}
	matches, _ := filepath.Glob(path + ".corrupt-*")
	if len(matches) != 0 {
		t.Fatalf("a locked database was moved aside: %v", matches)
	}
	if _, err := s.Append(Record{Kind: "input"}); err != nil {
		t.Fatalf("first store after the second Open: %v", err)
	}
	if res, err := s.Verify(); err != nil || res.FirstBad != 0 || res.Records != 2 {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
}

// allRedelivered reports whether every message is marked redelivered.
func allRedelivered(ms []outbox.Message) bool {
	for _, m := range ms {
		if !m.Redelivered {
			return false
		}
	}
	return true
}
