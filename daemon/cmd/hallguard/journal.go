package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/hallguard/hallguard/daemon"
	"github.com/hallguard/hallguard/daemon/api"
	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/journal"
)

// cmdJournal reads the journal: the file itself when no daemon holds it,
// else the running daemon's API on its local listener (http.local_listen,
// or -local); verify always reads the file (a snapshot beside a running
// daemon: the daemon does not vouch for its own archive), and with -anchor
// checks it against the heads the center holds (issue #12 §5).
//
//	hallguard journal verify [-anchor FILE|TOPIC] [-broker URL]
//	hallguard journal list   [filters]
//	hallguard journal show   SEQ
//	hallguard journal export [-format jsonl|csv] [-o FILE] [filters]
//
// filters: -since -until (RFC 3339 or YYYY-MM-DD) -playbook -incident -kind -drill true|false -limit N
func cmdJournal(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: hallguard journal verify|list|show SEQ|export [flags]")
		return exitConfig
	}
	sub, args := args[0], args[1:]
	run, ok := journalSubcommand(sub)
	if !ok {
		fmt.Fprintf(stderr, "hallguard journal: unknown subcommand %q (want verify, list, show or export)\n", sub)
		return exitConfig
	}
	j, code := openJournalCmd(sub, args, stderr)
	if j == nil {
		return code
	}
	if j.st != nil {
		defer j.st.Close()
	}
	return run(j, stdout, stderr)
}

// journalSubcommand returns the journal subcommand sub, which runs on the
// opened journal, or false for an unknown one.
func journalSubcommand(sub string) (func(j *journalCmd, stdout, stderr io.Writer) int, bool) {
	switch sub {
	case "verify":
		return journalVerify, true
	case "export":
		return journalExport, true
	case "list":
		return journalList, true
	case "show":
		return journalShow, true
	}
	return nil, false
}

// journalCmd is a journal subcommand's flags, filter and config, and the
// journal it reads: st when the file could be opened, else api, the
// running daemon's journal API.
type journalCmd struct {
	fs     *flag.FlagSet
	cfg    *config.Config
	q      url.Values
	filter journal.Filter
	st     *journal.Store
	api    string

	file, format, out, local, anchor, anchorBroker string
}

// openJournalCmd parses the flags of journal sub, loads the config and
// opens the journal. It returns nil and the exit code on failure; the
// caller closes j.st when it is not nil.
func openJournalCmd(sub string, args []string, stderr io.Writer) (*journalCmd, int) {
	j := &journalCmd{q: url.Values{}}
	fs, path := newFlags("journal "+sub, stderr)
	j.fs = fs
	fs.StringVar(&j.file, "file", "", "journal file (default: hallguard.db in the config's state_dir)")
	fs.StringVar(&j.format, "format", "jsonl", "export format: jsonl or csv")
	fs.StringVar(&j.out, "o", "", "export to this file instead of standard output (created 0600; never through a symlink)")
	fs.StringVar(&j.local, "local", "", "the running daemon's local listener (default: the config's http.local_listen)")
	fs.StringVar(&j.anchor, "anchor", "", "verify: the center's heads, a FILE of saved reports and journal/head messages (one JSON message per line), or else an MQTT TOPIC (filter) whose retained messages hold them")
	fs.StringVar(&j.anchorBroker, "broker", "", "verify -anchor TOPIC: broker URL (default: from the config)")
	for _, name := range []string{"since", "until", "playbook", "incident", "kind", "drill", "limit"} {
		name := name
		fs.Func(name, "filter: "+name, func(v string) error { j.q.Set(name, v); return nil })
	}
	if err := fs.Parse(args); err != nil {
		return nil, exitConfig
	}
	filter, err := api.ParseFilter(j.q)
	if err != nil {
		fmt.Fprintln(stderr, "hallguard journal: -"+err.Error())
		return nil, exitConfig
	}
	j.filter = filter
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return nil, exitConfig
	}
	j.cfg = cfg
	if j.file == "" {
		j.file = daemon.JournalPath(cfg.StateDir)
	}
	st, err := journal.OpenReadOnly(j.file, 300*time.Millisecond)
	if errors.Is(err, journal.ErrLocked) && sub == "verify" {
		// The daemon holds the file: verify a snapshot of it, never the
		// daemon's own word (issue #12 §5).
		st, err = journal.OpenSnapshot(j.file)
	}
	switch {
	case errors.Is(err, journal.ErrLocked):
		if j.local == "" {
			j.local = cfg.HTTP.LocalListen
		}
		j.api = "http://" + j.local + "/api/journal/"
	case err != nil:
		fmt.Fprintln(stderr, "hallguard journal:", err)
		return nil, exitFail
	default:
		j.st = st
	}
	return j, exitOK
}

func journalVerify(j *journalCmd, stdout, stderr io.Writer) int {
	return verifyAnchored(j.cfg, j.st, j.file, j.anchor, brokerOr(j.cfg, j.anchorBroker), stdout, stderr)
}

func journalExport(j *journalCmd, stdout, stderr io.Writer) int {
	w := stdout
	if j.out != "" {
		f, err := createPrivate(j.out)
		if err != nil {
			fmt.Fprintln(stderr, "hallguard journal export:", err)
			return exitFail
		}
		defer f.Close()
		w = f
	}
	var err error
	if j.st != nil {
		switch j.format {
		case "jsonl":
			err = j.st.ExportJSONL(w, j.filter)
		case "csv":
			err = j.st.ExportCSV(w, j.filter)
		default:
			err = fmt.Errorf("-format: want jsonl or csv, not %q", j.format)
		}
	} else {
		j.q.Set("format", j.format)
		err = copyHTTP(w, j.api+"export?"+j.q.Encode())
	}
	if err != nil {
		fmt.Fprintln(stderr, "hallguard journal export:", err)
		return exitFail
	}
	return exitOK
}

func journalShow(j *journalCmd, stdout, stderr io.Writer) int {
	recs, ok := j.records(stderr)
	if !ok {
		return exitFail
	}
	if j.fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: hallguard journal show SEQ")
		return exitConfig
	}
	seq, err := strconv.ParseUint(j.fs.Arg(0), 10, 64)
	if err != nil {
		fmt.Fprintln(stderr, "hallguard journal show: SEQ must be a number")
		return exitConfig
	}
	for _, r := range recs {
		if r.Seq == seq {
			b, _ := json.MarshalIndent(r, "", "  ")
			fmt.Fprintln(stdout, string(b))
			return exitOK
		}
	}
	fmt.Fprintf(stderr, "hallguard journal show: no record %d\n", seq)
	return exitFail
}

func journalList(j *journalCmd, stdout, stderr io.Writer) int {
	recs, ok := j.records(stderr)
	if !ok {
		return exitFail
	}
	for _, r := range recs {
		drill := ""
		if r.Drill {
			drill = " DRILL"
		}
		data := string(r.Data)
		if len(data) > 100 {
			data = data[:97] + "..."
		}
		fmt.Fprintf(stdout, "%6d  %s  %-16s %-28s %-14s%s %s\n", r.Seq, r.Time.Local().Format("2006-01-02 15:04:05.000"),
			r.Kind, r.Incident, r.Playbook, drill, data)
	}
	return exitOK
}

// records lists the records that pass the filter, from the file or the
// daemon's API. It reports a failure on stderr and returns false.
func (j *journalCmd) records(stderr io.Writer) ([]journal.Record, bool) {
	recs, err := records(j.st, j.api, j.q, j.filter)
	if err != nil {
		fmt.Fprintln(stderr, "hallguard journal:", err)
		return nil, false
	}
	return recs, true
}

func records(st *journal.Store, api string, q url.Values, f journal.Filter) ([]journal.Record, error) {
	if st != nil {
		return st.List(f)
	}
	q.Set("format", "jsonl")
	body, err := getOK(api + "export?" + q.Encode())
	if err != nil {
		return nil, err
	}
	defer body.Close()
	var out []journal.Record
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var r journal.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("export line: %w", err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

func copyHTTP(w io.Writer, u string) error {
	body, err := getOK(u)
	if err != nil {
		return err
	}
	defer body.Close()
	_, err = io.Copy(w, body)
	return err
}

// getOK GETs u from the daemon's API: a status other than 200 OK is an
// error that quotes the body.
func getOK(u string) (io.ReadCloser, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %s", resp.Status, b)
	}
	return resp.Body, nil
}

// createPrivate opens path for the archive: never through a symlink (a
// link planted where the archive goes would otherwise redirect it onto
// another file), a regular file only, mode 0600 whatever the umask or the
// file's earlier mode (issue #12 §7).
func createPrivate(path string) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return nil, fmt.Errorf("%s is a symlink: refusing to write through it", path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s is a symlink: refusing to write through it", path)
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", path)
	}
	if err == nil {
		err = f.Chmod(0o600) // on the open file, not the path
	}
	if err == nil {
		err = f.Truncate(0)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
