package journal

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestOpenReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hallguard.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := s.Append(Record{Kind: "input", Data: json.RawMessage(`{"i":1}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := OpenReadOnly(path, 100*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("read-only open beside a writer: err = %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	res, err := ro.Verify()
	if err != nil || res.FirstBad != 0 || res.Records != 10 {
		t.Fatalf("Verify = %+v, %v; want 10 good records", res, err)
	}
	recs, err := ro.List(Filter{Kind: "input"})
	if err != nil || len(recs) != 10 {
		t.Fatalf("List = %d records, %v", len(recs), err)
	}
	if _, err := ro.Append(Record{Kind: "x"}); err == nil {
		t.Errorf("Append on a read-only store succeeded")
	}
}
