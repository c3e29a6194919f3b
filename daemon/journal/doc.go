// Package journal is hallguard's durable store: the append-only,
// hash-chained journal of everything that happened (inputs, incidents,
// steps, reports, commands, drills, reviews, trouble) and the outbox of
// reports waiting for the monitoring center's PUBACK, in one bbolt file in
// the state directory (<state_dir>/hallguard.db).
//
// It serves the plan's §3.2 (every incident reported promptly and
// truthfully: a report is on disk before it is sent and is sent until the
// broker acknowledges it, across restarts and crashes) and §3.5 (reports
// kept and archived: ExportJSONL and ExportCSV, re-verifiable with any tool;
// see Record for the hash encoding).
//
// What it must not do:
//
//   - block the engine: Outbox.Push never waits for the disk; one committer
//     goroutine writes everything, in group commits (one fsync for whatever
//     arrived while the previous commit was in flight);
//   - hold a report behind other records: reports (and side records: drill
//     records, reviews, CCTV requests) take their own lane, ahead of other
//     records, and no commit holds more than MaxBatch records; a report the
//     disk has not committed within ReportBudget goes from memory, flagged
//     not durable (Options.OnSlow); CommitAge shows a hung commit;
//   - forget an open incident: every report commit keeps the index of open
//     incidents and the highest report seq (OpenIncidents), whatever the
//     journal's size;
//   - drop a report: when the disk fails (full, read-only, I/O error) the
//     store degrades — reports are kept and sent from memory, Append
//     returns ErrDegraded, the trouble is raised once (Options.OnTrouble),
//     and the backlog is written in order when the disk works again; a
//     damaged file found at Open is moved aside, never deleted, and its
//     unacknowledged reports are salvaged into the new one;
//   - rewrite a record: records are only appended; Verify detects any
//     changed byte, broken link, gap or reordering. Only Compact deletes,
//     and only retired outbox entries past Options.Retention and — when
//     Options.JournalRetention is set — the oldest records past it;
//   - panic or crash-loop on a bad disk or file: bbolt errors, panics and
//     memory faults while reading are errors, never a crash at every start.
//
// The chain is unkeyed, so it is anchored off the box (anchor.go, issue #12
// §5): Head goes to the center in every report and in a signed journal/head
// message (HeadMessage, HeadKey), and CheckAnchors finds a rewritten or cut
// tail against the heads the center holds. OpenSnapshot reads the file
// beside a running daemon without its lock.
//
// A second daemon on the same file gets ErrLocked after Options.OpenTimeout.
package journal
