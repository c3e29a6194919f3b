package console

import (
	"math"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
)

// State is the snapshot the page renders: what /console/api/state returns
// and /console/events pushes. It never holds anything of a silent
// playbook: snapshot leaves such incidents out before building it.
type State struct {
	Hall      HallState      `json:"hall"`
	Connected bool           `json:"connected"`
	Queue     QueueView      `json:"queue"`
	Incidents []IncidentView `json:"incidents"`
	Manual    []PlaybookView `json:"manual"`
	Drillable []PlaybookView `json:"drillable"`
	Drill     *DrillView     `json:"drill"`
	// Staff are the people who may act, as the page lists them to pick
	// from: an opaque id and the configured label, never the name.
	Staff []StaffView `json:"staff"`
	// Boot changes when the daemon restarts: the page then reloads itself
	// (new CSRF token, perhaps new assets).
	Boot string `json:"boot"`
}

// StaffView is one staff member on the page.
type StaffView struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

// HallState names the hall.
type HallState struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// QueueView is the queue's length, arrival rate and trend (§4.1).
type QueueView struct {
	Length int     `json:"length"`
	Rate   float64 `json:"rate"` // arrivals per minute, one decimal
	// Trend is rising, falling or steady: the length against a minute ago.
	Trend string `json:"trend"`
}

// IncidentView is one open, non-silent incident.
type IncidentView struct {
	ID         string       `json:"id"`
	Playbook   string       `json:"playbook"`
	Section    string       `json:"section"`
	Title      Text         `json:"title"`
	Variant    string       `json:"variant,omitempty"`
	VariantT   Text         `json:"variant_title"`
	State      engine.State `json:"state"`
	Drill      bool         `json:"drill"`
	OccurredAt time.Time    `json:"occurred_at"`
	// Resolvable: the playbook lets the hall resolve it (resolve_by hall).
	Resolvable bool       `json:"resolvable"`
	Steps      []StepView `json:"steps"`
	Impact     string     `json:"impact"`
	Control    string     `json:"control"`
	Trend      string     `json:"trend"`
}

// StepView is one step of an incident's playbook.
type StepView struct {
	ID      string     `json:"id"`
	Section string     `json:"section"`
	Text    Text       `json:"text"`
	Done    bool       `json:"done"`
	By      string     `json:"by,omitempty"`
	At      *time.Time `json:"at,omitempty"`
	Records []string   `json:"records,omitempty"`
}

// PlaybookView is a playbook staff may raise or drill.
type PlaybookView struct {
	ID       string        `json:"id"`
	Section  string        `json:"section"`
	Title    Text          `json:"title"`
	Variants []VariantView `json:"variants,omitempty"`
}

// VariantView is a case of a playbook.
type VariantView struct {
	ID      string `json:"id"`
	Section string `json:"section"`
	Title   Text   `json:"title"`
}

// DrillView is the drill in progress.
type DrillView struct {
	Incident string `json:"incident"`
	Playbook string `json:"playbook"`
}

// Text is a string in Chinese (the plan's original) and English.
type Text struct {
	ZH string `json:"zh"`
	EN string `json:"en"`
}

func text(t config.Text) Text { return Text{ZH: t.ZH, EN: t.EN} }

// silent reports whether the playbook id is one the hall must not see:
// a silent playbook, or one the config does not know (fail closed).
func silent(cfg *config.Config, id string) bool {
	pb := cfg.Playbook(id)
	return pb == nil || pb.Mode != "audible"
}

func playbookView(pb *config.Playbook) PlaybookView {
	v := PlaybookView{ID: pb.ID, Section: pb.Section, Title: text(pb.Title)}
	for _, vr := range pb.Variants {
		v.Variants = append(v.Variants, VariantView{ID: vr.ID, Section: vr.Section, Title: text(vr.Title)})
	}
	return v
}

// visible filters incidents down to what the page may show: open and not
// silent. This is the one place silence is enforced for the console.
func visible(cfg *config.Config, incs []engine.Incident) []engine.Incident {
	out := make([]engine.Incident, 0, len(incs))
	for _, inc := range incs {
		if inc.State != engine.StateActive && inc.State != engine.StateAcknowledged {
			continue
		}
		if silent(cfg, inc.Playbook) {
			continue
		}
		out = append(out, inc)
	}
	return out
}

func (c *Console) snapshot(view *view) State {
	cfg := view.cfg
	st := State{
		Hall:      HallState{ID: cfg.Hall.ID, Name: cfg.Hall.Name},
		Incidents: []IncidentView{},
		Manual:    []PlaybookView{},
		Drillable: []PlaybookView{},
		Staff:     []StaffView{},
		Boot:      c.boot,
	}
	if c.connected != nil {
		st.Connected = c.connected()
	}
	q := c.eng.Queue()
	st.Queue = QueueView{Length: q.Length, Rate: math.Round(q.Rate*10) / 10, Trend: c.trend(q.Length, c.clk.Now())}
	for _, inc := range visible(cfg, c.eng.Incidents()) {
		pb := cfg.Playbook(inc.Playbook)
		v := IncidentView{ID: inc.ID, Playbook: inc.Playbook, Section: pb.Section, Title: text(pb.Title), Variant: inc.Variant,
			State: inc.State, Drill: inc.Drill, OccurredAt: inc.OccurredAt.UTC(), Resolvable: pb.ResolveBy == "hall",
			Steps: []StepView{}, Impact: inc.Impact, Control: inc.Control, Trend: inc.Trend}
		if vr := pb.Variant(inc.Variant); vr != nil {
			v.VariantT = text(vr.Title)
			if vr.Section != "" {
				v.Section = vr.Section
			}
		}
		for _, s := range inc.Steps {
			sv := StepView{ID: s.ID, Section: s.Section, Text: text(s.Text), Done: s.Done, By: s.By, Records: s.Records}
			if l, ok := view.labels[s.By]; ok { // a staff member: their label, not the name
				sv.By = l
			}
			if !s.At.IsZero() {
				at := s.At.UTC()
				sv.At = &at
			}
			v.Steps = append(v.Steps, sv)
		}
		if inc.Drill {
			st.Drill = &DrillView{Incident: inc.ID, Playbook: inc.Playbook}
		}
		st.Incidents = append(st.Incidents, v)
	}
	for _, pb := range cfg.Playbooks {
		if pb.Mode != "audible" {
			continue // never offered, never named: §4.3 silent
		}
		if pb.Manual {
			st.Manual = append(st.Manual, playbookView(pb))
		}
		st.Drillable = append(st.Drillable, playbookView(pb))
	}
	for _, m := range view.order {
		st.Staff = append(st.Staff, StaffView{ID: m.id, Label: m.label})
	}
	return st
}

// trend compares the queue length with the one about a minute ago.
func (c *Console) trend(length int, now time.Time) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lengths = append(c.lengths, sample{now, length})
	cut := now.Add(-time.Minute)
	i := 0
	for i+1 < len(c.lengths) && !c.lengths[i+1].at.After(cut) {
		i++
	}
	c.lengths = c.lengths[i:]
	switch old := c.lengths[0].n; {
	case length > old:
		return "rising"
	case length < old:
		return "falling"
	}
	return "steady"
}

type sample struct {
	at time.Time
	n  int
}
