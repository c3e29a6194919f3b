package main

// Distributions, the table and results.json.

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"time"
)

// dist is a set of latency samples.
type dist []time.Duration

func (d dist) sorted() dist {
	s := append(dist(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

// q is the nearest-rank quantile.
func (d dist) q(p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := d.sorted()
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func (d dist) p50() time.Duration { return d.q(0.5) }
func (d dist) p99() time.Duration { return d.q(0.99) }
func (d dist) max() time.Duration { return d.q(1) }

func msf(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// String is "p50 / p99 / max ms (n)".
func (d dist) String() string {
	if len(d) == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p99 %s  max %s ms (n=%d)", fmtMS(d.p50()), fmtMS(d.p99()), fmtMS(d.max()), len(d))
}

func (d dist) data() map[string]any {
	return map[string]any{"p50_ms": msf(d.p50()), "p99_ms": msf(d.p99()), "max_ms": msf(d.max()), "n": len(d)}
}

func fmtMS(d time.Duration) string {
	v := msf(d)
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// sum adds two sample sets pairwise (same round).
func pairSum(a, b dist) dist {
	n := min(len(a), len(b))
	out := make(dist, n)
	for i := range n {
		out[i] = a[i] + b[i]
	}
	return out
}

// row is one line of the table.
type row struct {
	Section  string         `json:"section"`
	Name     string         `json:"name"`
	Value    string         `json:"value"`
	Baseline string         `json:"baseline"`
	Ratio    string         `json:"ratio"`
	Target   string         `json:"target"`
	Met      string         `json:"met"`
	Data     map[string]any `json:"data,omitempty"`
}

const dash = "—"

func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

// result is one run.
type result struct {
	Date     string         `json:"date"`
	Host     string         `json:"host"`
	Command  string         `json:"command"`
	Quick    bool           `json:"quick"`
	Seconds  float64        `json:"seconds"`
	Versions map[string]any `json:"versions"`
	Notes    []string       `json:"notes"`
	Rows     []row          `json:"rows"`
}

func (r *result) add(rw row) {
	for _, p := range []*string{&rw.Baseline, &rw.Ratio, &rw.Target, &rw.Met} {
		if *p == "" {
			*p = dash
		}
	}
	r.Rows = append(r.Rows, rw)
}

func (r *result) note(format string, a ...any) { r.Notes = append(r.Notes, fmt.Sprintf(format, a...)) }

// print writes the table: measurement | value | baseline | ratio | target | met?
func (r *result) print(w *os.File) {
	head := []string{"measurement", "value", "baseline", "ratio", "target", "met?"}
	cells := [][]string{head}
	for _, rw := range r.Rows {
		cells = append(cells, []string{rw.Name, rw.Value, rw.Baseline, rw.Ratio, rw.Target, rw.Met})
	}
	width := make([]int, len(head))
	for _, c := range cells {
		for i, s := range c {
			width[i] = max(width[i], len([]rune(s)))
		}
	}
	line := func(c []string) string {
		var b strings.Builder
		for i, s := range c {
			if i > 0 {
				b.WriteString(" | ")
			}
			b.WriteString(s)
			if i < len(c)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-len([]rune(s))))
			}
		}
		return strings.TrimRight(b.String(), " ")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "hallguard bench  %s  %s  (%.0f s)\n", r.Date, r.Command, r.Seconds)
	fmt.Fprintln(w, line(cells[0]))
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	fmt.Fprintln(w, line(sep))
	section := ""
	for i, rw := range r.Rows {
		if rw.Section != section && i > 0 {
			fmt.Fprintln(w, line(make([]string, len(head))))
		}
		section = rw.Section
		fmt.Fprintln(w, line(cells[i+1]))
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range r.Notes {
			fmt.Fprintln(w, "note: "+n)
		}
	}
}

// verdict is the bench's last line. It separates the two ways a run can
// end badly: the harness failed (harnessErr, exit 1: a figure could not be
// measured, which is a bug to fix) and a target was missed (exit 0: targets
// are for reading, not gating; the table names each miss).
func (r *result) verdict(harnessErr error) string {
	if harnessErr != nil {
		return "bench: HARNESS FAILED (exit 1): " + harnessErr.Error()
	}
	var missed []string
	for _, rw := range r.Rows {
		if rw.Met == met(false) {
			missed = append(missed, rw.Name)
		}
	}
	if len(missed) == 0 {
		return fmt.Sprintf("bench: harness ok; every target met (%d rows)", len(r.Rows))
	}
	return fmt.Sprintf("bench: harness ok; %d target(s) missed, reported not gating (exit 0): %s", len(missed), strings.Join(missed, "; "))
}

// save writes r into the JSON file under key, keeping the other keys (make
// bench and make bench-nodered each own one).
func (r *result) save(path, key string) error {
	all := map[string]json.RawMessage{}
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &all)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	all[key] = b
	out, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(out, '\n'), 0o644)
}

func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return dash
	}
	return fmt.Sprintf("%.2f×", a/b)
}
