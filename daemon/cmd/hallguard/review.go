package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hallguard/hallguard/daemon"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/daemon/journal"
	"github.com/hallguard/hallguard/daemon/report"
	"github.com/hallguard/hallguard/mqtt/command"
)

// cmdReview files the post-incident review (§3.4) of a resolved incident:
//
//	hallguard review INCIDENT --cause .. --course .. --handling .. --problems .. \
//	    [--actions "owner:YYYY-MM-DD:text;..."] [--by NAME]
//
// The hall journals it, publishes it on <review.topic>/<incident> for the
// Safety Supervision Department, and moves the incident to reviewed.
func cmdReview(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("review", stderr)
	send := newSendFlags(fs, "command key file (default: the config's commands.key_file)")
	by := fs.String("by", os.Getenv("USER"), "who reviews")
	var rv engine.Review
	fs.StringVar(&rv.Cause, "cause", "", "the cause (required)")
	fs.StringVar(&rv.Course, "course", "", "the course of events (required)")
	fs.StringVar(&rv.Handling, "handling", "", "how it was handled (required)")
	fs.StringVar(&rv.Problems, "problems", "", "problems and gaps revealed (required; \"none\" if none)")
	actions := fs.String("actions", "", `rectification actions, "owner:YYYY-MM-DD:text" separated by ;`)
	setUsage(fs, `usage: hallguard review INCIDENT --cause .. --course .. --handling .. --problems .. [--actions "owner:due:text;..."]`, stderr)
	incident, ok := parseLeading(fs, args)
	if !ok {
		return exitConfig
	}
	for _, a := range strings.Split(*actions, ";") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		parts := strings.SplitN(a, ":", 3)
		if len(parts) != 3 {
			fmt.Fprintf(stderr, "hallguard review: action %q: want owner:YYYY-MM-DD:text\n", a)
			return exitConfig
		}
		rv.Actions = append(rv.Actions, engine.ReviewAction{Owner: strings.TrimSpace(parts[0]), Due: strings.TrimSpace(parts[1]), Text: strings.TrimSpace(parts[2])})
	}
	b, err := json.Marshal(rv)
	if err != nil {
		fmt.Fprintln(stderr, "hallguard review:", err)
		return exitFail
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return exitConfig
	}
	m := command.Message{By: *by, Incident: incident, Review: b}
	return sendSigned(cfg, "review", m, send, stdout, stderr)
}

// cmdReport renders an incident's full report from the journal, for
// printing and filing (§3.5):
//
//	hallguard report INCIDENT [--format md|json] [--lang zh|en|both] [-o FILE]
//
// It opens the journal read-only, or, while the daemon holds it, reads it
// through the daemon's loopback HTTP API (http.listen, or --http).
func cmdReport(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("report", stderr)
	file := fs.String("file", "", "journal file (default: hallguard.db in the config's state_dir)")
	api := fs.String("local", "", "the running daemon's local listener (default: the config's http.local_listen)")
	fs.StringVar(api, "http", "", "the older name of -local")
	format := fs.String("format", "md", "md or json")
	lang := fs.String("lang", "both", "zh, en or both (md)")
	out := fs.String("o", "", "write to this file instead of standard output")
	setUsage(fs, "usage: hallguard report INCIDENT [--format md|json] [--lang zh|en|both] [-o FILE]", stderr)
	incident, ok := parseLeading(fs, args)
	if !ok {
		return exitConfig
	}
	if *format != "md" && *format != "json" {
		fmt.Fprintf(stderr, "hallguard report: format %q: want md or json\n", *format)
		return exitConfig
	}
	if *lang != "zh" && *lang != "en" && *lang != "both" {
		fmt.Fprintf(stderr, "hallguard report: lang %q: want zh, en or both\n", *lang)
		return exitConfig
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return exitConfig
	}
	if *file == "" {
		*file = daemon.JournalPath(cfg.StateDir)
	}
	if *api == "" {
		*api = cfg.HTTP.LocalListen
	}
	var jsonl bytes.Buffer
	if !readIncidentJSONL(&jsonl, *file, *api, incident, stderr) {
		return exitFail
	}
	f, err := report.ReadIncident(&jsonl, incident)
	if err != nil {
		fmt.Fprintln(stderr, "hallguard", err)
		return exitFail
	}
	var doc bytes.Buffer
	if *format == "json" {
		err = report.RenderJSON(&doc, f)
	} else {
		err = report.RenderMarkdown(&doc, f, *lang)
	}
	if err == nil {
		if *out != "" {
			err = os.WriteFile(*out, doc.Bytes(), 0o640)
		} else {
			_, err = stdout.Write(doc.Bytes())
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "hallguard report:", err)
		return exitFail
	}
	return exitOK
}

// readIncidentJSONL writes the incident's journal records, as JSONL, to
// jsonl: from the journal file opened read-only, or, while the daemon
// holds it, from the daemon's journal API on its local listener api. It
// reports a failure on stderr and returns false.
func readIncidentJSONL(jsonl *bytes.Buffer, file, api, incident string, stderr io.Writer) bool {
	st, err := journal.OpenReadOnly(file, 300*time.Millisecond)
	switch {
	case errors.Is(err, journal.ErrLocked):
		u := "http://" + api + "/api/journal/export?format=jsonl&incident=" + url.QueryEscape(incident)
		if err := copyHTTP(jsonl, u); err != nil {
			fmt.Fprintln(stderr, "hallguard report: the daemon holds the journal and its API failed:", err)
			return false
		}
	case err != nil:
		fmt.Fprintln(stderr, "hallguard report:", err)
		return false
	default:
		err := st.ExportJSONL(jsonl, journal.Filter{Incident: incident})
		st.Close()
		if err != nil {
			fmt.Fprintln(stderr, "hallguard report:", err)
			return false
		}
	}
	return true
}
