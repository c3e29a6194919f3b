// Package report renders an incident's archive file (§3.5): every report
// made for it and its review (§3.4), read from the journal's JSONL export,
// as Markdown in zh, en or both, or as JSON, for `hallguard report`.
//
// It is pure code: it reads what it is given and writes to the writer it is
// given. It must not open the journal, reach the network or the daemon.
package report
