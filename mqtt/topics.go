package mqtt

import "strings"

// Topics computes every topic of one hall, under <prefix>/<hall-id>/. It is
// the only place topic names are made.
type Topics struct {
	root string
}

// NewTopics returns the topics of hall hallID under prefix ("hallguard" when
// empty).
func NewTopics(prefix, hallID string) Topics {
	if prefix == "" {
		prefix = defaultPrefix
	}
	return Topics{root: strings.TrimSuffix(prefix, "/") + "/" + segment(hallID)}
}

// Root is <prefix>/<hall-id>.
func (t Topics) Root() string { return t.root }

// All is the filter for every topic of the hall: <root>/#.
func (t Topics) All() string { return t.root + "/#" }

// Status is <root>/status: retained "online" (birth) or "offline" (will, and
// on a clean close).
func (t Topics) Status() string { return t.root + "/status" }

// Input is <root>/inputs/<input-id>: the retained state of one input.
func (t Topics) Input(id string) string { return t.root + "/inputs/" + segment(id) }

// Queue is <root>/queue: the retained state of the queue model (§4.1).
func (t Topics) Queue() string { return t.root + "/queue" }

// Incident is <root>/incidents/<incident-id>: the incident's latest report,
// retained.
func (t Topics) Incident(id string) string { return t.root + "/incidents/" + segment(id) }

// Alert is where every report of a playbook goes, not retained:
// <root>/alerts/<playbook>, or <root>/drills/alerts/<playbook> for drills, so
// that the center's dispatch never takes a drill for a real alert.
func (t Topics) Alert(playbook string, drill bool) string {
	if drill {
		return t.root + "/drills/alerts/" + segment(playbook)
	}
	return t.root + "/alerts/" + segment(playbook)
}

// Conditions is <root>/conditions: the retained JSON array of the active
// trouble, tamper and supervisory conditions.
func (t Topics) Conditions() string { return t.root + "/conditions" }

// ConditionEvents is <root>/events/condition: every condition change, not
// retained.
func (t Topics) ConditionEvents() string { return t.root + "/events/condition" }

// JournalHead is <root>/journal/head: the journal's chain head, retained
// and signed (issue #12 §5; journal.HeadMessage).
func (t Topics) JournalHead() string { return t.root + "/journal/head" }

// Command is <root>/cmd/<verb>; "+" gives the filter for every command.
func (t Topics) Command(verb string) string {
	if verb == "+" {
		return t.root + "/cmd/+"
	}
	return t.root + "/cmd/" + segment(verb)
}

// Under returns <root>/<rel> for a topic or filter given relative to the root.
func (t Topics) Under(rel string) string { return t.root + "/" + strings.TrimPrefix(rel, "/") }

// Rel returns topic relative to the root, and whether it lies under it.
func (t Topics) Rel(topic string) (string, bool) {
	rel, ok := strings.CutPrefix(topic, t.root+"/")
	return rel, ok
}

// segment makes s safe as one topic level: '/', '+' and '#' become '_', and
// an empty id becomes "_". Ids from a validated config never need it.
func segment(s string) string {
	if s == "" {
		return "_"
	}
	if !strings.ContainsAny(s, "/+#") {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '/', '+', '#':
			return '_'
		}
		return r
	}, s)
}
