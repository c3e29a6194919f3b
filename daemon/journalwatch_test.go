package daemon

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/devices/clock"
)

// bareDaemon is a Daemon with only what conditions need; conditions it
// raises are held in condEarly (no MQTT, no recorder).
func bareDaemon(t *testing.T) *Daemon {
	t.Helper()
	cfg := &config.Config{}
	cfg.Journal.ReportBudget = config.Duration(time.Second)
	return &Daemon{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		clk: clock.NewFake(time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)), metrics: NewMetrics(cfg)}
}

func (d *Daemon) heldConditions(kind string) []engine.Condition {
	d.condMu.Lock()
	defer d.condMu.Unlock()
	var out []engine.Condition
	for _, c := range d.condEarly {
		if c.Kind == kind {
			out = append(out, c)
		}
	}
	return out
}

// TestWatchdogNoticesStuckCommitter: a journal commit inside the disk for
// longer than journal.report_budget raises journal_slow trouble once, even
// with no report waiting (records only); it is cleared when the commit
// ends; and the budget's own trouble (a report sent from memory) and the
// watchdog's are one condition, cleared only when both are over.
func TestWatchdogNoticesStuckCommitter(t *testing.T) {
	d := bareDaemon(t)
	d.checkCommitter(10 * time.Millisecond)
	if got := d.heldConditions(troubleJournalSlow); len(got) != 0 {
		t.Fatalf("a commit within the budget raised %v", got)
	}
	d.checkCommitter(3 * time.Second)
	d.checkCommitter(4 * time.Second)
	got := d.heldConditions(troubleJournalSlow)
	if len(got) != 1 || !got[0].Active || got[0].Class != engine.ClassTrouble {
		t.Fatalf("a stuck committer: conditions %+v, want journal_slow raised once", got)
	}
	d.journalSlow(slowBudget, true, "report r1 not on disk after 1s")
	d.checkCommitter(0)
	if got := d.heldConditions(troubleJournalSlow); len(got) != 1 {
		t.Fatalf("cleared while a report was still held from memory: %+v", got)
	}
	d.journalSlow(slowBudget, false, "")
	got = d.heldConditions(troubleJournalSlow)
	if len(got) != 2 || got[1].Active {
		t.Fatalf("after the disk caught up: %+v, want journal_slow cleared", got)
	}
}

// TestCCTVReplyTopicNeedsRestart: the answers' subscription is made at
// start, so a reload that changes cctv.reply_topic is refused as
// needs_restart rather than awaiting answers on a topic nobody reads.
func TestCCTVReplyTopicNeedsRestart(t *testing.T) {
	old := &config.Config{}
	next := &config.Config{}
	old.CCTV.ReplyTopic, next.CCTV.ReplyTopic = "cctv/reply", "cctv/answers"
	diff := restartOnly(old, next)
	if len(diff) != 1 || diff[0] != "cctv.reply_topic" {
		t.Errorf("restartOnly = %v, want [cctv.reply_topic]", diff)
	}
}
