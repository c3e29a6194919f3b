package journal

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/devices/clock"
)

func TestExport(t *testing.T) {
	clk := clock.NewFake(t0)
	s := openT(t, dbPath(t), Options{Clock: clk})
	type rec struct {
		at       time.Duration
		kind     string
		incident string
		playbook string
		drill    bool
		data     string
	}
	all := []rec{
		{0, "config", "", "", false, `{"file":"hallguard.yaml"}`},
		{time.Minute, "incident", "inc-1", "robbery", false, `{"variant":"armed","note":"a, \"quoted\"\nline"}`},
		{2 * time.Minute, "step", "inc-1", "robbery", false, `{"step":"s1"}`},
		{3 * time.Minute, "drill", "drill-1", "fire", true, `{"step":"evacuate"}`},
		{4 * time.Minute, "incident", "inc-2", "surge", false, `{"length":31}`},
		{5 * time.Minute, "review", "inc-1", "robbery", false, `{"by":"王磊"}`},
	}
	for _, r := range all {
		if _, err := s.Append(Record{Time: t0.Add(r.at), Kind: r.kind, Incident: r.incident, Playbook: r.playbook,
			Drill: r.drill, Data: json.RawMessage(r.data)}); err != nil {
			t.Fatal(err)
		}
	}
	yes, no := true, false
	for _, tc := range []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"all", Filter{}, []uint64{1, 2, 3, 4, 5, 6}},
		{"since", Filter{Since: t0.Add(3 * time.Minute)}, []uint64{4, 5, 6}},
		{"until", Filter{Until: t0.Add(2 * time.Minute)}, []uint64{1, 2}},
		{"since and until", Filter{Since: t0.Add(time.Minute), Until: t0.Add(4 * time.Minute)}, []uint64{2, 3, 4}},
		{"playbook", Filter{Playbook: "robbery"}, []uint64{2, 3, 6}},
		{"incident", Filter{Incident: "inc-1"}, []uint64{2, 3, 6}},
		{"kind", Filter{Kind: "incident"}, []uint64{2, 5}},
		{"drill", Filter{Drill: &yes}, []uint64{4}},
		{"live", Filter{Drill: &no, Since: t0.Add(4 * time.Minute)}, []uint64{5, 6}},
		{"from", Filter{From: 5}, []uint64{5, 6}},
		{"limit", Filter{Playbook: "robbery", Limit: 2}, []uint64{2, 3}},
		{"none", Filter{Playbook: "media"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := s.List(tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, r := range recs {
				got = append(got, r.Seq)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("List = %v, want %v", got, tc.want)
			}

			var jl bytes.Buffer
			if err := s.ExportJSONL(&jl, tc.f); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(&jl)
			i := 0
			for sc.Scan() {
				var w struct {
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
				dec := json.NewDecoder(strings.NewReader(sc.Text()))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&w); err != nil {
					t.Fatalf("JSONL line %d: %v", i+1, err)
				}
				if i >= len(recs) {
					t.Fatalf("JSONL has more lines than List records")
				}
				r := recs[i]
				src := all[r.Seq-1]
				if w.Seq != r.Seq || w.Kind != src.kind || w.Incident != src.incident || w.Playbook != src.playbook ||
					w.Drill != src.drill || w.Time != timeText(t0.Add(src.at)) || w.Hash != r.Hash || w.Prev != r.Prev {
					t.Fatalf("JSONL line %d: %+v, want %+v", i+1, w, r)
				}
				var a, b any
				_ = json.Unmarshal(w.Data, &a)
				_ = json.Unmarshal([]byte(src.data), &b)
				if !reflect.DeepEqual(a, b) {
					t.Fatalf("JSONL line %d: data %s, want %s", i+1, w.Data, src.data)
				}
				if h := auditHash(strconv.FormatUint(w.Seq, 10), w.Time, w.Kind, w.Incident, w.Playbook,
					strconv.FormatBool(w.Drill), string(w.Data), w.Prev); h != w.Hash {
					t.Fatalf("JSONL line %d: hash does not re-verify", i+1)
				}
				i++
			}
			if i != len(recs) {
				t.Fatalf("JSONL: %d lines, want %d", i, len(recs))
			}

			var cb bytes.Buffer
			if err := s.ExportCSV(&cb, tc.f); err != nil {
				t.Fatal(err)
			}
			rows, err := csv.NewReader(&cb).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"seq", "time", "kind", "incident", "playbook", "drill", "hash", "prev", "data"}; !reflect.DeepEqual(rows[0], want) {
				t.Fatalf("CSV header %v", rows[0])
			}
			if len(rows)-1 != len(recs) {
				t.Fatalf("CSV: %d rows, want %d", len(rows)-1, len(recs))
			}
			for j, row := range rows[1:] {
				r := recs[j]
				if row[0] != strconv.FormatUint(r.Seq, 10) || row[2] != r.Kind || row[8] != string(r.Data) {
					t.Fatalf("CSV row %d: %v", j+1, row)
				}
				// An auditor re-verifies every row from its cells alone.
				if h := auditHash(row[0], row[1], row[2], row[3], row[4], row[5], row[8], row[7]); h != row[6] {
					t.Fatalf("CSV row %d does not re-verify", j+1)
				}
			}
		})
	}
	// The full CSV is a chain: each prev is the hash of the row before.
	var cb bytes.Buffer
	if err := s.ExportCSV(&cb, Filter{}); err != nil {
		t.Fatal(err)
	}
	rows, _ := csv.NewReader(&cb).ReadAll()
	prev := zeroHash
	for _, row := range rows[1:] {
		if row[7] != prev {
			t.Fatalf("CSV row %s: prev does not link", row[0])
		}
		prev = row[6]
	}
}

// ExampleStore_ExportCSV shows the §3.5 archive format.
func ExampleStore_ExportCSV() {
	dir, _ := os.MkdirTemp("", "journal-example")
	defer os.RemoveAll(dir)
	s, err := Open(filepath.Join(dir, "hallguard.db"), Options{Clock: clock.NewFake(t0)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	s.Append(Record{Kind: "incident", Incident: "inc-1", Playbook: "fire", Data: json.RawMessage(`{"origin": "sensor"}`)})
	s.ExportCSV(os.Stdout, Filter{})
	// Output:
	// seq,time,kind,incident,playbook,drill,hash,prev,data
	// 1,2025-03-01T08:15:02.5Z,incident,inc-1,fire,false,e6fdeaf0fe30bdb9a4c068a82ed1fa448ea7b14058c4414762a2ae010f7383bf,0000000000000000000000000000000000000000000000000000000000000000,"{""origin"":""sensor""}"
}
