// Package api serves hallguard's read-only HTTP API on the loopback
// listener: the journal's verify and export, and pages of the incidents the
// engine holds. It parses queries and encodes answers; it must not change
// the journal or the engine, and it knows nothing of the listeners that
// serve it (daemon mounts it).
package api

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/daemon/journal"
)

// ParseFilter reads journal filters from URL query values: since, until
// (RFC 3339 or YYYY-MM-DD), playbook, incident, kind, drill (true|false),
// from (seq) and limit. The CLI and the HTTP API share it.
func ParseFilter(q url.Values) (journal.Filter, error) {
	var f journal.Filter
	var err error
	if f.Since, err = parseTime(q.Get("since")); err != nil {
		return f, fmt.Errorf("since: %w", err)
	}
	if f.Until, err = parseTime(q.Get("until")); err != nil {
		return f, fmt.Errorf("until: %w", err)
	}
	f.Playbook, f.Incident, f.Kind = q.Get("playbook"), q.Get("incident"), q.Get("kind")
	if v := q.Get("drill"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, fmt.Errorf("drill: want true or false, not %q", v)
		}
		f.Drill = &b
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 0 {
			return f, fmt.Errorf("limit: want a whole number, not %q", v)
		}
	}
	if v := q.Get("from"); v != "" {
		if f.From, err = strconv.ParseUint(v, 10, 64); err != nil {
			return f, fmt.Errorf("from: want a sequence number, not %q", v)
		}
	}
	return f, nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (want RFC 3339 or YYYY-MM-DD)", s)
}

// Journal is what the journal routes read: the running daemon's store,
// whose file lock keeps other processes out.
type Journal interface {
	Verify() (journal.VerifyResult, error)
	ExportJSONL(w io.Writer, f journal.Filter) error
	ExportCSV(w io.Writer, f journal.Filter) error
}

var _ Journal = (*journal.Store)(nil)

// JournalRoutes mounts /api/journal/verify and /api/journal/export (jsonl
// or csv, filtered by ParseFilter's query) on mux. An export that fails
// part-way is logged to log.
func JournalRoutes(mux *http.ServeMux, j Journal, log *slog.Logger) {
	mux.HandleFunc("/api/journal/verify", func(w http.ResponseWriter, r *http.Request) {
		res, err := j.Verify()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	})
	mux.HandleFunc("/api/journal/export", func(w http.ResponseWriter, r *http.Request) {
		f, err := ParseFilter(r.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		switch r.URL.Query().Get("format") {
		case "", "jsonl":
			w.Header().Set("Content-Type", "application/jsonl")
			err = j.ExportJSONL(w, f)
		case "csv":
			w.Header().Set("Content-Type", "text/csv")
			err = j.ExportCSV(w, f)
		default:
			http.Error(w, "format: want jsonl or csv", http.StatusBadRequest)
			return
		}
		if err != nil {
			log.Error("journal export", "err", err)
		}
	})
}

// IncidentPager is what /api/incidents needs of the engine.
type IncidentPager interface {
	IncidentPage(engine.IncidentQuery) engine.IncidentPage
}

var _ IncidentPager = (*engine.Engine)(nil)

// ParseIncidentQuery reads /api/incidents's query: state (open or closed;
// both when absent), before (an incident id: the page starts after it, in
// newest-first order) and limit (1 to 1000, default 100).
func ParseIncidentQuery(q url.Values) (engine.IncidentQuery, error) {
	iq := engine.IncidentQuery{State: q.Get("state"), Before: q.Get("before"), Limit: engine.DefaultPageSize}
	switch iq.State {
	case "", engine.QueryOpen, engine.QueryClosed:
	default:
		return iq, fmt.Errorf("state: want open or closed, not %q", iq.State)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > engine.MaxPageSize {
			return iq, fmt.Errorf("limit: want a whole number from 1 to %d, not %q", engine.MaxPageSize, v)
		}
		iq.Limit = n
	}
	return iq, nil
}

// IncidentsHandler serves /api/incidents: one page of the incidents the
// engine holds, newest first, as a JSON array. When there are more, a
// Link header (RFC 8288) with rel="next" gives the next page's address.
// The engine's lock is held only to copy the page, never while writing.
func IncidentsHandler(p IncidentPager) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := ParseIncidentQuery(r.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		page := p.IncidentPage(q)
		if page.Next != "" {
			next := url.Values{"before": {page.Next}, "limit": {strconv.Itoa(q.Limit)}}
			if q.State != "" {
				next.Set("state", q.State)
			}
			w.Header().Set("Link", fmt.Sprintf("<%s?%s>; rel=\"next\"", r.URL.Path, next.Encode()))
		}
		if page.Incidents == nil {
			page.Incidents = []engine.Incident{}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(page.Incidents)
	})
}
