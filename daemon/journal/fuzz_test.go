package journal

import (
	"bytes"
	"testing"
)

// FuzzDecodeRecord: whatever bytes are stored under whatever key, decoding
// (and Verify's checks) never panic, and a record that decodes is exactly
// its canonical encoding. The seeds are in testdata/fuzz/FuzzDecodeRecord.
// Run:
//
//	go test -run='^$' -fuzz=FuzzDecodeRecord -fuzztime=20s ./daemon/journal/
func FuzzDecodeRecord(f *testing.F) {
	good := Record{Seq: 3, Time: t0, Kind: "input", Incident: "inc-1", Playbook: "robbery", Data: []byte(`{"a":[1,"<&>"]}`), Prev: zeroHash}
	good.Hash = hashRecord(&good)
	v, err := encodeRecord(&good)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seqKey(3), v)
	f.Fuzz(func(t *testing.T, key, val []byte) {
		r, err := decodeRecord(key, val)
		if err == nil {
			again, err := encodeRecord(&r)
			if err != nil || !bytes.Equal(again, val) {
				t.Fatalf("decoded record does not re-encode to its bytes: %v", err)
			}
			_ = hashRecord(&r) == r.Hash
		}
		_, _ = decodeEntry(key, val)
		_, _ = decodeLink(val)
	})
}
