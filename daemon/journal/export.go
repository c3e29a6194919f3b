package journal

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
)

// ExportJSONL writes the records matching f to w, one JSON object per line:
//
//	{"seq":1,"time":"2025-03-01T08:15:02.5Z","kind":"report","incident":"...","playbook":"robbery","drill":false,"data":{...},"prev":"000…","hash":"…"}
//
// Each line is byte for byte the record as stored; "time" and the raw
// "data" value are the exact hashed text (see Record). This and
// ExportCSV are the §3.5 archive.
func (s *Store) ExportJSONL(w io.Writer, f Filter) error {
	bw := bufio.NewWriter(w)
	err := s.scan(f, func(r *Record) error {
		b, err := encodeRecord(r)
		if err != nil {
			return fmt.Errorf("journal: export: record %d: %w", r.Seq, err)
		}
		bw.Write(b)
		return bw.WriteByte('\n')
	})
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("journal: export: %w", err)
	}
	return nil
}

// csvHeader are ExportCSV's columns.
var csvHeader = []string{"seq", "time", "kind", "incident", "playbook", "drill", "hash", "prev", "data"}

// ExportCSV writes the records matching f to w as CSV (quoted as in RFC
// 4180, LF line ends) with a header row:
// seq,time,kind,incident,playbook,drill,hash,prev,data. drill is true or
// false, data the compact JSON in one cell. Every cell is the exact text
// hashed, so the chain can be re-verified from the CSV alone (see Record).
func (s *Store) ExportCSV(w io.Writer, f Filter) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("journal: export: %w", err)
	}
	err := s.scan(f, func(r *Record) error {
		return cw.Write([]string{
			strconv.FormatUint(r.Seq, 10), timeText(r.Time), r.Kind, r.Incident, r.Playbook,
			strconv.FormatBool(r.Drill), r.Hash, r.Prev, string(r.Data),
		})
	})
	if err != nil {
		return err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("journal: export: %w", err)
	}
	return nil
}
