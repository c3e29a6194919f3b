package engine

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// EventReviewed is the report made when an incident is reviewed.
const EventReviewed Event = "reviewed"

// Review is the §3.4 analysis of an incident: its cause, course and
// handling, the problems and gaps it revealed, and the rectification
// actions, each with an owner and a due date. It goes to the Safety
// Supervision Department and is kept in the archive (§3.5).
type Review struct {
	Incident   string         `json:"incident"`
	Hall       string         `json:"hall"`
	Playbook   string         `json:"playbook"`
	Resolution Event          `json:"resolution"`
	ResolvedAt time.Time      `json:"resolved_at"`
	Cause      string         `json:"cause"`
	Course     string         `json:"course"`
	Handling   string         `json:"handling"`
	Problems   string         `json:"problems"`
	Actions    []ReviewAction `json:"actions"`
	By         string         `json:"by"`
	At         time.Time      `json:"at"`
}

// ReviewAction is one rectification action; Due is a date, YYYY-MM-DD.
type ReviewAction struct {
	Owner string `json:"owner"`
	Due   string `json:"due"`
	Text  string `json:"text"`
}

// ReviewSink receives reviews (Sinks.Review). Like Sink's methods, Review
// is called with the engine's lock held.
type ReviewSink interface {
	Review(Review)
}

// ClosedIncident is an incident an earlier run resolved, as the journal
// has it, so that it can be reviewed, and counted while unreviewed, after
// a restart.
type ClosedIncident struct {
	ID, Playbook string
	Resolution   Event
	Drill        bool
	ResolvedAt   time.Time
	Reviewed     bool
}

// WithClosedIncidents seeds the incidents earlier runs closed.
func WithClosedIncidents(cs []ClosedIncident) Option {
	return func(e *Engine) {
		for i := range cs {
			c := cs[i]
			e.pastClosed(&c)
		}
	}
}

func (e *Engine) review(c Command) (string, error) {
	id := c.Incident
	r := c.Review
	if r == nil {
		return id, fmt.Errorf("%w: a review needs cause, course, handling and problems (§3.4)", ErrBadCommand)
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"cause", r.Cause}, {"course", r.Course}, {"handling", r.Handling}, {"problems", r.Problems}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return id, fmt.Errorf("%w: a review needs %s (§3.4)", ErrBadCommand, strings.Join(missing, ", "))
	}
	for i, a := range r.Actions {
		if strings.TrimSpace(a.Owner) == "" || strings.TrimSpace(a.Text) == "" {
			return id, fmt.Errorf("%w: action %d needs an owner and a text", ErrBadCommand, i+1)
		}
		if _, err := time.Parse(time.DateOnly, a.Due); err != nil {
			return id, fmt.Errorf("%w: action %d: due %q is not a date YYYY-MM-DD", ErrBadCommand, i+1, a.Due)
		}
	}
	rv := Review{Incident: id, Hall: e.cfg.Hall.ID, Cause: r.Cause, Course: r.Course, Handling: r.Handling,
		Problems: r.Problems, Actions: slices.Clone(r.Actions), By: c.By, At: e.clk.Now().UTC()}
	if rv.Actions == nil {
		rv.Actions = []ReviewAction{}
	}
	if inc := e.incidents[id]; inc != nil {
		switch {
		case inc.Drill:
			return id, fmt.Errorf("%w: a drill is evaluated (drill evaluate), not reviewed", ErrNotAllowed)
		case inc.Test:
			return id, fmt.Errorf("%w: a walk test's presses are in its record, not reviewed", ErrNotAllowed)
		case inc.State != StateResolved:
			return id, fmt.Errorf("%w: incident is %s: only a resolved incident is reviewed", ErrNotAllowed, inc.State)
		}
		rv.Playbook, rv.Resolution, rv.ResolvedAt = inc.Playbook, inc.Resolution, inc.ResolvedAt.UTC()
		inc.State = StateReviewed
		inc.Review = &rv
		inc.measure(Measure{At: e.clk.Now(), Kind: "note", Section: "§3.4", Text: "reviewed", By: c.By})
		e.report(inc, EventReviewed, nil, time.Time{})
	} else {
		past := e.closedPast[id]
		switch {
		case past == nil:
			return id, fmt.Errorf("%w %q", ErrUnknownIncident, id)
		case past.Drill:
			return id, fmt.Errorf("%w: a drill is evaluated (drill evaluate), not reviewed", ErrNotAllowed)
		case past.Reviewed:
			return id, fmt.Errorf("%w: incident is reviewed", ErrNotAllowed)
		}
		past.Reviewed = true
		if i, found := slices.BinarySearchFunc(e.awaiting, id, byID); found {
			e.awaiting = slices.Delete(e.awaiting, i, i+1)
		}
		rv.Playbook, rv.Resolution, rv.ResolvedAt = past.Playbook, past.Resolution, past.ResolvedAt.UTC()
	}
	if e.sink.Review != nil {
		c := rv
		c.Actions = slices.Clone(rv.Actions)
		e.sink.Review.Review(c)
	}
	e.evict() // reviewed: it leaves memory, the journal has it
	e.checkReviewsDue()
	return id, nil
}

// pastClosed keeps an incident an earlier run closed, or one that left
// memory, so that it can be reviewed; one that waits for its review is
// also in awaiting, sorted by id.
func (e *Engine) pastClosed(c *ClosedIncident) {
	e.closedPast[c.ID] = c
	if c.Drill || c.Reviewed || c.Resolution != EventResolved {
		return
	}
	if i, found := slices.BinarySearchFunc(e.awaiting, c.ID, byID); !found {
		e.awaiting = slices.Insert(e.awaiting, i, c)
	}
}

func byID(c *ClosedIncident, id string) int { return strings.Compare(c.ID, id) }

// unreviewed lists incidents resolved (not false alarms, not drills or
// walk tests) longer than review.due_after ago and not reviewed, sorted.
// It walks the incidents held and those awaiting review, never the whole
// history.
func (e *Engine) unreviewed() []string {
	due := e.cfg.Review.DueAfter.D()
	if due <= 0 {
		return nil
	}
	now := e.clk.Now()
	var out []string
	for _, id := range e.order {
		if inc := e.incidents[id]; inc.real() && inc.State == StateResolved && inc.Resolution == EventResolved && now.Sub(inc.ResolvedAt) >= due {
			out = append(out, id)
		}
	}
	for _, c := range e.awaiting {
		if _, here := e.incidents[c.ID]; !here && now.Sub(c.ResolvedAt) >= due {
			out = append(out, c.ID)
		}
	}
	slices.Sort(out)
	return out
}

// Unreviewed returns how many incidents wait for their review past
// review.due_after (§3.4), as of the last check (hourly, and at each
// review): the metrics scrape reads it without walking every incident the
// journal has closed.
func (e *Engine) Unreviewed() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reviewsDueN
}

// reviewsNamed is how many overdue incidents review_overdue names; it
// counts the rest.
const reviewsNamed = 50

// checkReviewsDue raises, updates or clears the supervisory condition
// review_overdue, naming the oldest incidents in Detail.
func (e *Engine) checkReviewsDue() {
	ids := e.unreviewed()
	e.reviewsDueN = len(ids)
	key := strings.Join(ids, " ")
	if key == e.reviewsDue {
		return
	}
	e.reviewsDue = key
	detail := ""
	if len(ids) > 0 {
		named := ids[:min(len(ids), reviewsNamed)]
		detail = fmt.Sprintf("not reviewed within %s (§3.4): %s", e.cfg.Review.DueAfter.D(), strings.Join(named, " "))
		if n := len(ids) - len(named); n > 0 {
			detail += fmt.Sprintf(" and %d more", n)
		}
	}
	e.sink.Condition(Condition{Class: ClassSupervisory, Kind: "review_overdue", Active: len(ids) > 0, Time: e.clk.Now(),
		Detail: detail, Count: uint64(len(ids))})
}
