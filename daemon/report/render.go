package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/mqtt"
)

// Incident is one incident as the archive holds it (§3.5): every
// report made for it, in order, and its review (§3.4). It is read from the
// journal's JSONL export and rendered for printing and filing.
type Incident struct {
	Incident string
	Reports  []engine.Report
	Review   *engine.Review
}

// Final is the incident's latest report.
func (f *Incident) Final() engine.Report { return f.Reports[len(f.Reports)-1] }

// ReadIncident reads an incident from JSONL journal records (the
// output of journal export with -incident ID, or of /api/journal/export).
func ReadIncident(r io.Reader, incident string) (*Incident, error) {
	f := &Incident{Incident: incident}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var rec struct {
			Kind     string          `json:"kind"`
			Incident string          `json:"incident"`
			Data     json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("report: journal record: %w", err)
		}
		if rec.Incident != incident {
			continue
		}
		switch rec.Kind {
		case "report":
			var d struct {
				Report engine.Report `json:"report"`
			}
			if err := json.Unmarshal(rec.Data, &d); err != nil {
				return nil, fmt.Errorf("report: report record: %w", err)
			}
			f.Reports = append(f.Reports, d.Report)
		case "review":
			var rv engine.Review
			if err := json.Unmarshal(rec.Data, &rv); err != nil {
				return nil, fmt.Errorf("report: review record: %w", err)
			}
			f.Review = &rv
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if len(f.Reports) == 0 {
		return nil, fmt.Errorf("report: no reports of incident %q in the journal", incident)
	}
	return f, nil
}

// incidentJSON is RenderJSON's document.
type incidentJSON struct {
	Incident string              `json:"incident"`
	Final    mqtt.ReportPayload  `json:"report"`
	Reports  []incidentReportRef `json:"reports"`
	Review   *engine.Review      `json:"review"`
}

type incidentReportRef struct {
	ID      string       `json:"id"`
	Version int          `json:"version"`
	Event   engine.Event `json:"event"`
	Seq     uint64       `json:"seq"`
	Made    time.Time    `json:"made_at"`
}

// RenderJSON writes the incident as one JSON document: its latest
// report as the center received it (sent_at: when it was made), the list
// of reports, and the review.
func RenderJSON(w io.Writer, f *Incident) error {
	fin := f.Final()
	doc := incidentJSON{Incident: f.Incident, Final: mqtt.NewReportPayload(fin, fin.Created), Review: f.Review}
	for _, r := range f.Reports {
		doc.Reports = append(doc.Reports, incidentReportRef{ID: r.ID, Version: r.Version, Event: r.Event, Seq: r.Seq, Made: r.Created.UTC()})
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// label is one heading or field name in Chinese and English.
type label struct{ zh, en string }

func (l label) in(lang string) string {
	switch lang {
	case "zh":
		return l.zh
	case "en":
		return l.en
	}
	return l.zh + " " + l.en
}

// RenderMarkdown writes the full incident report for printing and
// filing: the §3.3 items in order, the timeline, the steps, the reports
// sent and the §3.4 review. lang is zh, en or both.
func RenderMarkdown(w io.Writer, f *Incident, lang string) error {
	if lang != "zh" && lang != "en" && lang != "both" {
		return fmt.Errorf("report: lang %q: want zh, en or both", lang)
	}
	r := f.Final()
	m := &markdown{b: &strings.Builder{}, lang: lang}
	m.header(r)
	m.items(r)
	m.timeline(r.Timeline)
	m.steps(r.Steps)
	m.reports(f.Reports)
	m.review(f.Review)
	_, err := io.WriteString(w, m.b.String())
	return err
}

// markdown is RenderMarkdown's output, in lang, as it is written: one
// method per section of the report.
type markdown struct {
	b    *strings.Builder
	lang string
}

// L is a heading or field name in m's language.
func (m *markdown) L(zh, en string) string { return label{zh, en}.in(m.lang) }

// text is a text given in Chinese and English, in m's language; a text
// missing in one is given in the other.
func (m *markdown) text(zh, en string) string {
	switch {
	case m.lang == "zh" && zh != "":
		return zh
	case m.lang == "en" && en != "":
		return en
	case zh != "" && en != "" && zh != en:
		return zh + " / " + en
	case zh != "":
		return zh
	}
	return en
}

func tm(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000 UTC")
}

func tp(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return tm(*t)
}

func sec(s *float64) string {
	if s == nil {
		return "—"
	}
	return fmt.Sprintf("%.3f s", *s)
}

// header is the title and the plan, state and origin of the incident.
func (m *markdown) header(r engine.Report) {
	b, L := m.b, m.L
	title := L("事件报告", "Incident report")
	if r.Drill {
		title = L("演练报告", "Drill report")
	}
	fmt.Fprintf(b, "# %s %s\n\n", title, r.Incident)
	fmt.Fprintf(b, "- %s: %s (%s)\n", L("预案", "Plan"), r.Playbook, r.Section)
	if r.Variant != "" {
		fmt.Fprintf(b, "- %s: %s\n", L("情形", "Variant"), r.Variant)
	}
	fmt.Fprintf(b, "- %s: %s\n- %s: %s %s\n- %s: %v\n\n", L("状态", "State"), r.State,
		L("来源", "Origin"), r.Origin, r.Source, L("演练", "Drill"), r.Drill)
}

// items are the §3.3 items 1 to 7, in order.
func (m *markdown) items(r engine.Report) {
	b, L := m.b, m.L
	fmt.Fprintf(b, "## 1. %s (§3.3 1)\n\n%s, %s (%s)\n\n", L("营业厅名称及地点", "Hall and location"), r.Hall.Name, r.Hall.Location, r.Hall.ID)
	fmt.Fprintf(b, "## 2. %s (§3.3 2)\n\n%s\n\n", L("事件发生时间", "Time of the event"), tm(r.OccurredAt))
	fmt.Fprintf(b, "## 3. %s (§3.3 3)\n\n%s\n\n", L("事件类型", "Type of event"), m.text(r.Type.ZH, r.Type.EN))
	fmt.Fprintf(b, "## 4. %s (§3.3 4)\n\n%s\n\n", L("影响及危害程度", "Impact and degree of harm"), orUnknown(r.Impact))
	if d := r.ImpactDetail; d != nil {
		fmt.Fprintf(b, "| %s | %s |\n|---|---|\n", L("项目", "Item"), L("情况", "Detail"))
		for _, row := range []struct {
			l label
			v string
		}{{label{"财产损失", "Property"}, d.Property}, {label{"现金、凭证", "Cash and vouchers"}, d.CashVouchers},
			{label{"人员伤亡", "Casualties"}, d.Casualties}, {label{"影响范围", "Scope"}, d.Scope}} {
			fmt.Fprintf(b, "| %s | %s |\n", row.l.in(m.lang), cell(orUnknown(row.v)))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(b, "## 5. %s (§3.3 5)\n\n%s: %s\n\n", L("已采取的应急措施及控制情况", "Measures taken and control"), L("控制情况", "Control"), orUnknown(r.Control))
	if len(r.Measures) > 0 {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n|---|---|---|---|---|\n", L("时间", "Time"), L("类别", "Kind"), L("措施", "Measure"), L("条款", "Section"), L("执行人", "By"))
		for _, ms := range r.Measures {
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", tm(ms.At), ms.Kind, cell(ms.Text), ms.Section, cell(ms.By))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(b, "## 6. %s (§3.3 6)\n\n%s\n\n", L("发展趋势、潜在损失及下一步措施", "Trend, potential losses and next measures"), orUnknown(r.Trend))
	fmt.Fprintf(b, "## 7. %s (§3.3 7)\n\n%s\n\n", L("其他需要报告的事项", "Other"), orUnknown(r.Other))
}

// timeline is the incident's timeline, when the report has one.
func (m *markdown) timeline(tl *engine.Timeline) {
	if tl == nil {
		return
	}
	b, L := m.b, m.L
	fmt.Fprintf(b, "## %s\n\n| %s | %s | %s |\n|---|---|---|\n", L("时间线", "Timeline"), L("事项", "Event"), L("时间", "Time"), L("距启动", "After activation"))
	rows := []struct {
		l     label
		t     *time.Time
		after *float64
	}{
		{label{"发现", "Detected"}, tl.DetectedAt, negate(tl.DetectToActivate)},
		{label{"启动预案", "Activated"}, tl.ActivatedAt, zero()},
		{label{"首报发出", "First report made"}, tl.FirstReportAt, tl.ActivateToReport},
		{label{"首报送达 (PUBACK)", "First report delivered (PUBACK)"}, tl.DeliveredAt, sum(tl.ActivateToReport, tl.ReportToDelivered)},
		{label{"中心确认", "Acknowledged"}, tl.AcknowledgedAt, tl.ActivateToAck},
		{label{"处置完毕", "Resolved"}, tl.ResolvedAt, tl.ActivateToResolve},
	}
	for _, row := range rows {
		fmt.Fprintf(b, "| %s | %s | %s |\n", row.l.in(m.lang), tp(row.t), sec(row.after))
	}
	fmt.Fprintf(b, "\n%s: %s; %s: %s; %s: %s\n\n", L("结果", "Resolution"), tl.Resolution, L("处置人", "By"), cell(tl.ResolvedBy), L("原因", "Reason"), cell(orDash(tl.Reason)))
}

// steps is the table of the plan's steps, when there are any.
func (m *markdown) steps(steps []engine.StepState) {
	if len(steps) == 0 {
		return
	}
	b, L := m.b, m.L
	fmt.Fprintf(b, "## %s\n\n| %s | %s | %s | %s | %s |\n|---|---|---|---|---|\n", L("处置步骤", "Steps"), L("条款", "Section"), L("步骤", "Step"), L("完成", "Done"), L("执行人", "By"), L("时间", "Time"))
	for _, s := range steps {
		done := L("否", "no")
		if s.Done {
			done = L("是", "yes")
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", s.Section, cell(m.text(s.Text.ZH, s.Text.EN)), done, cell(orDash(s.By)), tm(s.At))
	}
	b.WriteString("\n")
}

// reports is the table of the reports made for the incident.
func (m *markdown) reports(reports []engine.Report) {
	b, L := m.b, m.L
	fmt.Fprintf(b, "## %s\n\n| %s | %s | seq | %s |\n|---|---|---|---|\n", L("已发报告", "Reports sent"), L("版本", "Version"), L("事由", "Event"), L("生成时间", "Made at"))
	for _, rp := range reports {
		fmt.Fprintf(b, "| v%d | %s | %d | %s |\n", rp.Version, rp.Event, rp.Seq, tm(rp.Created))
	}
	b.WriteString("\n")
}

// review is the §3.4 post-incident review, or a note that there is none
// yet.
func (m *markdown) review(rv *engine.Review) {
	b, L := m.b, m.L
	fmt.Fprintf(b, "## %s (§3.4)\n\n", L("事后分析", "Post-incident review"))
	if rv == nil {
		fmt.Fprintf(b, "%s\n", L("尚未分析。", "Not reviewed yet."))
		return
	}
	for _, row := range []struct {
		l label
		v string
	}{{label{"原因", "Cause"}, rv.Cause}, {label{"经过", "Course"}, rv.Course}, {label{"处置情况", "Handling"}, rv.Handling},
		{label{"暴露的问题和不足", "Problems and gaps"}, rv.Problems}} {
		fmt.Fprintf(b, "- **%s**: %s\n", row.l.in(m.lang), row.v)
	}
	fmt.Fprintf(b, "- **%s**: %s, %s\n\n", L("分析人", "Reviewed by"), rv.By, tm(rv.At))
	if len(rv.Actions) > 0 {
		fmt.Fprintf(b, "| %s | %s | %s |\n|---|---|---|\n", L("整改措施", "Rectification"), L("责任人", "Owner"), L("期限", "Due"))
		for _, a := range rv.Actions {
			fmt.Fprintf(b, "| %s | %s | %s |\n", cell(a.Text), cell(a.Owner), a.Due)
		}
	}
}

func orUnknown(s string) string {
	if s == "" {
		return engine.Unknown
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// cell keeps a table cell on one line.
func cell(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}

func zero() *float64 { z := 0.0; return &z }

func negate(p *float64) *float64 {
	if p == nil {
		return nil
	}
	n := 0 - *p // not -0
	return &n
}

func sum(a, b *float64) *float64 {
	if a == nil || b == nil {
		return nil
	}
	s := *a + *b
	return &s
}
