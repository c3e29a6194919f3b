package engine

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// ImpactDetail is the structured §3.3 4 impact: the property, cash and
// vouchers affected, casualties, and the scope of the event. Each field reads
// "unknown" until given (§3.2: never guessed). It complements Report.Impact,
// the free-text summary, which stays as it was for receivers that only read
// that.
type ImpactDetail struct {
	Property     string `json:"property"`
	CashVouchers string `json:"cash_vouchers"`
	Casualties   string `json:"casualties"`
	Scope        string `json:"scope"`
}

// ImpactKeys are the keys of Command.ImpactDetail (and of the
// impact_detail object of a report command), in §3.3 4 order.
var ImpactKeys = []string{"property", "cash_vouchers", "casualties", "scope"}

func (d *ImpactDetail) field(key string) *string {
	switch key {
	case "property":
		return &d.Property
	case "cash_vouchers":
		return &d.CashVouchers
	case "casualties":
		return &d.Casualties
	case "scope":
		return &d.Scope
	}
	return nil
}

// setImpact applies a report command's impact detail to inc. It returns
// false when nothing was given.
func setImpact(inc *Incident, detail map[string]string) (bool, error) {
	if len(detail) == 0 {
		return false, nil
	}
	for k := range detail {
		if (&ImpactDetail{}).field(k) == nil {
			return false, fmt.Errorf("%w: impact_detail has no %q (keys: %s)", ErrBadCommand, k, strings.Join(ImpactKeys, ", "))
		}
	}
	if inc.ImpactDetail == nil {
		inc.ImpactDetail = &ImpactDetail{Unknown, Unknown, Unknown, Unknown}
	}
	keys := make([]string, 0, len(detail))
	for k := range detail {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.TrimSpace(detail[k])
		if v == "" {
			v = Unknown
		}
		*inc.ImpactDetail.field(k) = v
	}
	return true, nil
}

// Timeline is the course of an incident as the final report gives it
// (§3.3 5, and the basis of the §3.4 review): when it was detected and
// activated, when its first report was made and when the broker first
// acknowledged that report (PUBACK), when it was acknowledged, each step,
// when it was resolved, and the durations between them. Times are UTC or
// null when they did not happen (yet); durations are seconds, null when one
// of their ends is unknown.
type Timeline struct {
	// DetectedAt is the triggering event (the input's edge; for incidents
	// raised by people, the command).
	DetectedAt *time.Time `json:"detected_at"`
	// ActivatedAt is when the engine raised the incident and started its
	// playbook (§3.1).
	ActivatedAt *time.Time `json:"activated_at"`
	// FirstReportAt is when the initial report was made (§3.2).
	FirstReportAt *time.Time `json:"first_report_at"`
	// DeliveredAt is the first PUBACK of the initial report; null if the
	// broker had not acknowledged it when this report was made.
	DeliveredAt    *time.Time     `json:"delivered_at"`
	AcknowledgedAt *time.Time     `json:"acknowledged_at"`
	AcknowledgedBy string         `json:"acknowledged_by"`
	Steps          []TimelineStep `json:"steps"`
	ResolvedAt     *time.Time     `json:"resolved_at"`
	ResolvedBy     string         `json:"resolved_by"`
	// Resolution is resolved or false_alarm; Reason says why.
	Resolution Event  `json:"resolution"`
	Reason     string `json:"reason"`
	// Durations, in seconds.
	DetectToActivate  *float64 `json:"detect_to_activate_seconds"`
	ActivateToReport  *float64 `json:"activate_to_first_report_seconds"`
	ReportToDelivered *float64 `json:"first_report_to_delivered_seconds"`
	ActivateToAck     *float64 `json:"activate_to_acknowledged_seconds"`
	ActivateToResolve *float64 `json:"activate_to_resolved_seconds"`
	DetectToResolve   *float64 `json:"detect_to_resolved_seconds"`
}

// TimelineStep is one playbook step on the timeline; At is null for a step
// not done (a missed step), AfterSeconds counts from activation.
type TimelineStep struct {
	ID           string     `json:"id"`
	Section      string     `json:"section"`
	Done         bool       `json:"done"`
	By           string     `json:"by"`
	At           *time.Time `json:"at"`
	AfterSeconds *float64   `json:"after_seconds"`
}

func utc(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func seconds(from, to time.Time) *float64 {
	if from.IsZero() || to.IsZero() {
		return nil
	}
	s := to.Sub(from).Seconds()
	return &s
}

// timeline builds inc's timeline as it stands.
func (inc *Incident) timeline() *Timeline {
	tl := &Timeline{
		DetectedAt: utc(inc.OccurredAt), ActivatedAt: utc(inc.DetectedAt),
		FirstReportAt: utc(inc.FirstReportAt), DeliveredAt: utc(inc.DeliveredAt),
		AcknowledgedAt: utc(inc.AckedAt), AcknowledgedBy: inc.AckedBy,
		ResolvedAt: utc(inc.ResolvedAt), ResolvedBy: inc.ResolvedBy,
		Resolution: inc.Resolution, Reason: inc.Reason,
		Steps:             make([]TimelineStep, 0, len(inc.Steps)),
		DetectToActivate:  seconds(inc.OccurredAt, inc.DetectedAt),
		ActivateToReport:  seconds(inc.DetectedAt, inc.FirstReportAt),
		ReportToDelivered: seconds(inc.FirstReportAt, inc.DeliveredAt),
		ActivateToAck:     seconds(inc.DetectedAt, inc.AckedAt),
		ActivateToResolve: seconds(inc.DetectedAt, inc.ResolvedAt),
		DetectToResolve:   seconds(inc.OccurredAt, inc.ResolvedAt),
	}
	for _, s := range inc.Steps {
		tl.Steps = append(tl.Steps, TimelineStep{ID: s.ID, Section: s.Section, Done: s.Done, By: s.By,
			At: utc(s.At), AfterSeconds: seconds(inc.DetectedAt, s.At)})
	}
	return tl
}

// Delivered tells the engine that the broker acknowledged (PUBACK) report
// reportID at at. The engine keeps the first delivery of each incident's
// initial report for its timeline; other reports, and reports of incidents
// it does not hold (a backlog replayed from an earlier run), are ignored.
// The daemon calls it from the publisher's OnAck hook; it takes the
// engine's lock, so call it off the publisher's delivery path.
func (e *Engine) Delivered(reportID string, at time.Time) {
	i := strings.LastIndex(reportID, ".v")
	if i < 0 || reportID[i+2:] != "1" {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if inc := e.incidents[reportID[:i]]; inc != nil && inc.DeliveredAt.IsZero() {
		inc.DeliveredAt = at
	}
}
