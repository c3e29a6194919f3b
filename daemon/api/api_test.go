package api_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/hallguard/hallguard/daemon/api"
	"github.com/hallguard/hallguard/daemon/engine"
)

// The query parsers refuse what they cannot read, naming the parameter,
// and read what they can.
func TestParseFilter(t *testing.T) {
	for _, tc := range []struct{ query, err string }{
		{"since=2026-12-01&until=2026-12-02T10:00&playbook=robbery&kind=report&drill=true&limit=5&from=7", ""},
		{"since=yesterday", "since: "},
		{"until=12/02/2026", "until: "},
		{"drill=maybe", "drill: want true or false"},
		{"limit=-1", "limit: want a whole number"},
		{"from=x", "from: want a sequence number"},
	} {
		q, _ := url.ParseQuery(tc.query)
		f, err := api.ParseFilter(q)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.query, err)
		case tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one starting %q", tc.query, err, tc.err)
		case tc.err == "" && (f.Playbook != "robbery" || f.Kind != "report" || f.Drill == nil || !*f.Drill || f.Limit != 5 || f.From != 7 || f.Since.IsZero() || f.Until.IsZero()):
			t.Errorf("%s: read %+v", tc.query, f)
		}
	}
}

func TestParseIncidentQuery(t *testing.T) {
	for _, tc := range []struct{ query, err string }{
		{"", ""},
		{"state=open&limit=10&before=inc-9", ""},
		{"state=gone", "state: want open or closed"},
		{"limit=0", "limit: want a whole number from 1"},
		{"limit=100000", "limit: want a whole number from 1"},
	} {
		q, _ := url.ParseQuery(tc.query)
		iq, err := api.ParseIncidentQuery(q)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.query, err)
		case tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one starting %q", tc.query, err, tc.err)
		case tc.query == "" && iq.Limit != engine.DefaultPageSize:
			t.Errorf("default limit %d, want %d", iq.Limit, engine.DefaultPageSize)
		}
	}
}
