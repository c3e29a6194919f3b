package journal

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Record is one entry of the journal. Append assigns Seq, Prev and Hash (and
// Time when it is zero); a stored record is never changed.
//
// # Hash encoding
//
// For auditors who re-verify an export with other tools: Hash is the
// SHA-256 taken over the concatenation of nine netstrings (djb's format:
// the decimal byte length, ":", the bytes, ","; "5:input,"), in this order:
//
//  1. the literal "hallguard.journal.v1"
//  2. seq: decimal, no leading zeros ("17")
//  3. time: the record's "time" exactly as exported (UTC RFC 3339 with
//     nanoseconds, trailing zeros removed, "Z": "2025-03-01T08:15:02.5Z")
//  4. kind, 5. incident, 6. playbook: the UTF-8 strings (empty allowed for
//     incident and playbook)
//  7. drill: "true" or "false"
//  8. data: the compact JSON bytes exactly as stored — the CSV export's
//     "data" cell verbatim, and the raw "data" value of a JSONL line ("null"
//     when there is none)
//  9. prev: the previous record's hash, 64 lowercase hex digits (64 zeros
//     for seq 1; after Compact pruned the oldest records, the first record
//     left keeps the hash of the last one pruned)
//
// and written as 64 lowercase hex digits. In Python, from a CSV row:
//
//	ns = lambda s: str(len(s.encode())).encode() + b":" + s.encode() + b","
//	fields = ["hallguard.journal.v1", row["seq"], row["time"], row["kind"],
//	          row["incident"], row["playbook"], row["drill"], row["data"], row["prev"]]
//	ok = hashlib.sha256(b"".join(map(ns, fields))).hexdigest() == row["hash"]
type Record struct {
	// Seq is 1, 2, 3, ... in commit order, without gaps.
	Seq uint64
	// Time is when the caller recorded the event (UTC once stored).
	Time time.Time
	// Kind is what happened: "input", "incident", "step", "report",
	// "command", "command_rejected", "config", "trouble", "review", "drill",
	// or any other non-empty string.
	Kind     string
	Incident string
	Playbook string
	Drill    bool
	// Data is the record's detail as JSON; stored compact. Empty Data is
	// stored as null.
	Data json.RawMessage
	// Prev is the Hash of the record before (64 zeros for record 1).
	Prev string
	// Hash is the lowercase hex SHA-256 of the record's canonical encoding
	// (see Hash encoding above).
	Hash string
}

// hashDomain is the first field of every record's hash input; it names the
// encoding so a future one cannot be confused with it.
const hashDomain = "hallguard.journal.v1"

// zeroHash is Prev of the first record.
var zeroHash = strings.Repeat("0", 64)

// maxData bounds Record.Data so one record can never become a write that
// fails forever (bbolt's own bound is 2 GiB).
const maxData = 8 << 20

// timeText is the canonical text of a record's time: UTC, RFC 3339 with
// nanoseconds and trailing zeros removed (Go's time.RFC3339Nano), e.g.
// "2025-03-01T08:15:02.5Z". It is the "time" of the stored, exported and
// hashed record alike.
func timeText(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// hashRecord returns the hex SHA-256 of r's canonical encoding (see
// Record).
func hashRecord(r *Record) string {
	h := sha256.New()
	ns := func(s string) { writeNetstring(h, s) }
	ns(hashDomain)
	ns(strconv.FormatUint(r.Seq, 10))
	ns(timeText(r.Time))
	ns(r.Kind)
	ns(r.Incident)
	ns(r.Playbook)
	ns(strconv.FormatBool(r.Drill))
	ns(string(r.Data))
	ns(r.Prev)
	return hex.EncodeToString(h.Sum(nil))
}

// writeNetstring writes s to w as a netstring, "<len>:<s>,": the unit of
// the texts hashed (Record) and signed (HeadMessage).
func writeNetstring(w io.Writer, s string) {
	w.Write(strconv.AppendInt(nil, int64(len(s)), 10))
	w.Write([]byte{':'})
	w.Write([]byte(s))
	w.Write([]byte{','})
}

// wireRecord is a record as stored in bbolt and as a JSONL export line: the
// same bytes. Field order is fixed by the struct.
type wireRecord struct {
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

// MarshalJSON encodes r as it is stored and exported (wireRecord: "seq",
// "time", "kind", …), so that `hallguard journal show` prints a record as
// the JSONL export has it. Decoding an export line into a Record needs
// nothing more: encoding/json matches those names to the fields.
func (r Record) MarshalJSON() ([]byte, error) { return json.Marshal(toWire(&r)) }

func toWire(r *Record) wireRecord {
	return wireRecord{
		Seq: r.Seq, Time: timeText(r.Time), Kind: r.Kind, Incident: r.Incident,
		Playbook: r.Playbook, Drill: r.Drill, Data: r.Data, Prev: r.Prev, Hash: r.Hash,
	}
}

// encodeJSON is json.Marshal without HTML escaping (so stored data bytes are
// exactly the hashed ones) and without the trailing newline.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}

// encodeRecord returns the stored value of r.
func encodeRecord(r *Record) ([]byte, error) { return encodeJSON(toWire(r)) }

// seqKey is the bbolt key of record seq (and of outbox entry seq).
func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// decodeRecord parses a stored record strictly: its value must be exactly
// the canonical encoding of what it decodes to, and its key its seq, so any
// changed byte is either an error here or a hash mismatch in Verify. It
// never panics, whatever the bytes (FuzzDecodeRecord). It does not check the
// hash.
func decodeRecord(key, val []byte) (Record, error) {
	if len(key) != 8 {
		return Record{}, corruptf("key of %d bytes, want 8", len(key))
	}
	kseq := binary.BigEndian.Uint64(key)
	var w wireRecord
	if err := json.Unmarshal(val, &w); err != nil {
		return Record{}, corruptf("record %d: %v", kseq, err)
	}
	if w.Seq != kseq {
		return Record{}, corruptf("record %d: stored under key %d", w.Seq, kseq)
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		return Record{}, corruptf("record %d: time: %v", kseq, err)
	}
	r := Record{
		Seq: w.Seq, Time: t.UTC(), Kind: w.Kind, Incident: w.Incident,
		Playbook: w.Playbook, Drill: w.Drill, Data: w.Data, Prev: w.Prev, Hash: w.Hash,
	}
	switch {
	case timeText(r.Time) != w.Time:
		return Record{}, corruptf("record %d: time %q not canonical", kseq, w.Time)
	case r.Kind == "":
		return Record{}, corruptf("record %d: no kind", kseq)
	case len(r.Data) == 0:
		return Record{}, corruptf("record %d: no data", kseq)
	case !isHash(r.Prev):
		return Record{}, corruptf("record %d: prev %q is not a hash", kseq, r.Prev)
	case !isHash(r.Hash):
		return Record{}, corruptf("record %d: hash %q is not a hash", kseq, r.Hash)
	}
	again, err := encodeRecord(&r)
	if err != nil {
		return Record{}, corruptf("record %d: %v", kseq, err)
	}
	if !bytes.Equal(again, val) {
		return Record{}, corruptf("record %d: stored bytes are not its canonical encoding", kseq)
	}
	return r, nil
}

// isHash reports whether s is 64 lowercase hex digits.
func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// prepare checks a record given to Append and puts it in its stored form:
// Time set (now when zero), Data compact JSON (null when empty). Seq, Prev
// and Hash are assigned at commit.
func prepare(r Record, now time.Time) (Record, error) {
	if r.Kind == "" {
		return Record{}, fmt.Errorf("journal: append: record without kind: %w", ErrInvalid)
	}
	for _, s := range []string{r.Kind, r.Incident, r.Playbook} {
		// No control characters either: they would not survive every CSV
		// reader (a CR LF in a cell becomes LF), and names have none.
		if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
			return Record{}, fmt.Errorf("journal: append: %q is not printable UTF-8: %w", s, ErrInvalid)
		}
	}
	if r.Time.IsZero() {
		r.Time = now
	}
	r.Time = r.Time.UTC()
	if y := r.Time.Year(); y < 1 || y > 9999 {
		return Record{}, fmt.Errorf("journal: append: time %v out of range: %w", r.Time, ErrInvalid)
	}
	if len(r.Data) == 0 {
		r.Data = json.RawMessage("null")
	} else {
		if len(r.Data) > maxData {
			return Record{}, fmt.Errorf("journal: append: data of %d bytes (max %d): %w", len(r.Data), maxData, ErrInvalid)
		}
		if !utf8.Valid(r.Data) || !json.Valid(r.Data) {
			return Record{}, fmt.Errorf("journal: append: data is not valid UTF-8 JSON: %w", ErrInvalid)
		}
		var b bytes.Buffer
		if err := json.Compact(&b, r.Data); err != nil {
			return Record{}, fmt.Errorf("journal: append: data: %w (%w)", ErrInvalid, err)
		}
		r.Data = json.RawMessage(b.Bytes())
	}
	r.Seq, r.Prev, r.Hash = 0, "", ""
	return r, nil
}
