package engine

import (
	"slices"
)

// The engine holds open incidents, and resolved ones for a while: until
// they are reviewed, past incidents.retention, or beyond
// incidents.max_resolved, the oldest first. Then they leave memory; the
// journal keeps them (§3.5), and one not yet reviewed is kept as a
// ClosedIncident so that it can still be reviewed (§3.4). So the memory,
// and the time Incidents and IncidentPage hold the lock, stay bounded
// however many incidents the hall has had.

// hold adds inc to the incidents the engine holds, in id order.
func (e *Engine) hold(inc *Incident) {
	e.incidents[inc.ID] = inc
	if i, found := slices.BinarySearch(e.order, inc.ID); !found {
		e.order = slices.Insert(e.order, i, inc.ID)
	}
}

// forget lets a closed incident leave memory. A real one stays known as
// closed, as it would after a restart: to be reviewed, or to refuse a
// second review.
func (e *Engine) forget(inc *Incident) {
	delete(e.incidents, inc.ID)
	if i, found := slices.BinarySearch(e.order, inc.ID); found {
		e.order = slices.Delete(e.order, i, i+1)
	}
	if inc.real() {
		e.pastClosed(&ClosedIncident{ID: inc.ID, Playbook: inc.Playbook, Resolution: inc.Resolution, ResolvedAt: inc.ResolvedAt,
			Reviewed: inc.State == StateReviewed})
	}
}

// evict lets reviewed incidents, those resolved longer than
// incidents.retention ago, and the oldest beyond incidents.max_resolved
// leave memory. Open incidents always stay.
func (e *Engine) evict() {
	now := e.clk.Now()
	retention, max := e.cfg.Incidents.Retention.D(), e.cfg.Incidents.MaxResolved
	var gone, kept []*Incident
	for _, id := range e.order {
		inc := e.incidents[id]
		switch {
		case inc.open():
		case inc.State == StateReviewed, retention > 0 && now.Sub(inc.ResolvedAt) >= retention:
			gone = append(gone, inc)
		default:
			kept = append(kept, inc)
		}
	}
	if max > 0 && len(kept) > max {
		gone = append(gone, kept[:len(kept)-max]...)
	}
	for _, inc := range gone {
		e.forget(inc)
	}
}

// Incident page states (IncidentQuery.State).
const (
	QueryOpen   = "open"   // active or acknowledged
	QueryClosed = "closed" // resolved or reviewed
)

// Page sizes of IncidentPage.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// IncidentQuery selects one page of the incidents the engine holds,
// newest first.
type IncidentQuery struct {
	// State is QueryOpen, QueryClosed or "" (both).
	State string
	// Before, when set, starts the page after this incident id: the Next
	// of the page before.
	Before string
	// Limit is the page size: DefaultPageSize when 0, at most MaxPageSize.
	Limit int
}

// IncidentPage is one page of incidents, newest first; Next is the Before
// of the next page, "" on the last.
type IncidentPage struct {
	Incidents []Incident
	Next      string
}

// IncidentPage returns one page of the incidents the engine holds.
func (e *Engine) IncidentPage(q IncidentQuery) IncidentPage {
	e.mu.Lock()
	defer e.mu.Unlock()
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultPageSize
	}
	limit = min(limit, MaxPageSize)
	end := len(e.order)
	if q.Before != "" {
		end, _ = slices.BinarySearch(e.order, q.Before)
	}
	p := IncidentPage{Incidents: make([]Incident, 0, min(limit, end))}
	for i := end - 1; i >= 0; i-- {
		inc := e.incidents[e.order[i]]
		if !q.matches(inc) {
			continue
		}
		if len(p.Incidents) == limit {
			p.Next = p.Incidents[limit-1].ID
			break
		}
		p.Incidents = append(p.Incidents, inc.copy())
	}
	return p
}

func (q IncidentQuery) matches(inc *Incident) bool {
	switch q.State {
	case QueryOpen:
		return inc.open()
	case QueryClosed:
		return !inc.open()
	}
	return true
}
