package journal

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
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
// hashed, so the chain can be re-verified from the CSV alone (see Record),
// with one exception: a cell that starts with = + - @, a tab or a carriage
// return (an incident id or playbook a command named, say) gets a leading
// ' so that a spreadsheet shows it as text instead of running it as a
// formula (CSV injection). A verifier drops that one ' first (csvText).
func (s *Store) ExportCSV(w io.Writer, f Filter) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("journal: export: %w", err)
	}
	err := s.scan(f, func(r *Record) error {
		return cw.Write([]string{
			strconv.FormatUint(r.Seq, 10), timeText(r.Time), csvText(r.Kind), csvText(r.Incident), csvText(r.Playbook),
			strconv.FormatBool(r.Drill), r.Hash, r.Prev, csvText(string(r.Data)),
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

// formulaStart are the first characters a spreadsheet takes as a formula.
const formulaStart = "=+-@\t\r"

// csvFormula reports whether cell, after any leading 's, starts a formula.
func csvFormula(cell string) bool {
	rest := strings.TrimLeft(cell, "'")
	return rest != "" && strings.ContainsRune(formulaStart, rune(rest[0]))
}

// csvText neutralises a CSV cell a spreadsheet would run as a formula: a
// leading ' makes it text. A cell that already starts with 's before a
// formula character gets one more, so the rule is exact both ways: a
// verifier drops one leading ' from every cell that matches '+[=+-@\t\r].
func csvText(cell string) string {
	if csvFormula(cell) {
		return "'" + cell
	}
	return cell
}
