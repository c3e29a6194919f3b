package hallproc

import "time"

// Report is the part of hallguard's report payload (mqtt.ReportPayload)
// the harnesses read, decoded from the wire on its own: the times as the
// daemon wrote them.
type Report struct {
	ID         string `json:"id"`
	Incident   string `json:"incident"`
	Seq        uint64 `json:"seq"`
	Version    int    `json:"version"`
	Event      string `json:"event"`
	Playbook   string `json:"playbook"`
	Section    string `json:"section"`
	State      string `json:"state"`
	Origin     string `json:"origin"`
	Source     string `json:"source"`
	Drill      bool   `json:"drill"`
	Silent     bool   `json:"silent"`
	Type       string `json:"type"`
	Variant    string `json:"variant"`
	Impact     string `json:"impact"`
	Control    string `json:"control"`
	Trend      string `json:"trend"`
	Other      string `json:"other"`
	OccurredAt string `json:"occurred_at"`
	SentAt     string `json:"sent_at"`
	Hall       struct {
		ID, Name, Location string
	} `json:"hall"`
	Measures []struct {
		Kind, Text, Section, By string
	} `json:"measures"`
	Steps []struct {
		ID, Section, ZH, EN string
		Done                bool
	} `json:"steps"`
	Inputs []string `json:"inputs"`
}

// Occurred is OccurredAt as a time.
func (r Report) Occurred() (time.Time, error) { return time.Parse(time.RFC3339Nano, r.OccurredAt) }
