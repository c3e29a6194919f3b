package daemon

import (
	"context"
	"fmt"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/devices/clock"
)

// notifyReady tells systemd (Type=notify) that hallguard is ready: called
// once inputs are open, the journal is loaded and the engine runs. Without
// $NOTIFY_SOCKET it does nothing.
func (d *Daemon) notifyReady() {
	if ok, err := sddaemon.SdNotify(false, sddaemon.SdNotifyReady); err != nil {
		d.log.Warn("sd_notify READY", "err", err)
	} else if ok {
		d.log.Info("told systemd we are ready")
	}
}

// watchdog feeds systemd's watchdog (WatchdogSec) at half its interval, but
// only after the engine answered a Ping: a hung engine stops the pings, and
// systemd restarts the daemon. It also watches the journal's committer
// every half report budget, with or without systemd: a commit inside the
// disk for longer than journal.report_budget raises journal_slow, even when
// no report is waiting (§3.2). A stuck committer does not stop the pings:
// reports flow from memory meanwhile, and a restart would lose those not
// yet on disk without curing the disk. The feeding runs in a loop of its
// own, so a Ping the engine holds does not hold the committer's watch.
func (d *Daemon) watchdog(ctx context.Context) {
	interval, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil {
		d.log.Warn("systemd watchdog", "err", err)
		interval = 0
	}
	if interval > 0 {
		d.log.Info("systemd watchdog enabled", "interval_seconds", interval.Seconds())
		feed := clock.Every(d.clk, interval/2, func(time.Time) { d.feedWatchdog(ctx) })
		d.loops.Go(func() { feed(ctx) })
	}
	budget := d.cfg.Journal.ReportBudget.D()
	if budget <= 0 {
		budget = time.Second
	}
	clock.Every(d.clk, budget/2, func(time.Time) { d.checkCommitter(d.store.CommitAge()) })(ctx)
}

// feedWatchdog tells systemd the daemon lives, once the engine answered a
// Ping; nothing when ctx ended meanwhile. It runs in the feeding loop of
// its own, so a Ping the engine holds holds only the feeding.
func (d *Daemon) feedWatchdog(ctx context.Context) {
	d.eng.Ping()
	if ctx.Err() != nil {
		return
	}
	if _, err := sddaemon.SdNotify(false, sddaemon.SdNotifyWatchdog); err != nil {
		d.log.Warn("sd_notify WATCHDOG", "err", err)
	}
}

// troubleJournalSlow is the trouble raised while the journal's disk is too
// slow for the report budget.
const troubleJournalSlow = "journal_slow"

// Sources of journal_slow.
const (
	slowBudget    = "budget"    // a report outlived the budget (journal.Options.OnSlow)
	slowCommitter = "committer" // the watchdog saw a commit stuck in the disk
)

// checkCommitter is the watchdog's look at the journal: age is how long the
// commit in flight has been inside the disk (0: none).
func (d *Daemon) checkCommitter(age time.Duration) {
	budget := d.cfg.Journal.ReportBudget.D()
	stuck := age > budget
	detail := ""
	if stuck {
		detail = fmt.Sprintf("a journal commit has been in the disk for %.1fs (budget %s)", age.Seconds(), budget)
	}
	d.journalSlow(slowCommitter, stuck, detail)
}

// journalSlow records one source of journal_slow as active or not, and
// raises the trouble when the first becomes active, clears it when the last
// is over.
func (d *Daemon) journalSlow(source string, active bool, detail string) {
	d.slowMu.Lock()
	if d.slowBy == nil {
		d.slowBy = map[string]bool{}
	}
	was := len(d.slowBy) > 0
	if active {
		d.slowBy[source] = true
	} else {
		delete(d.slowBy, source)
	}
	now := len(d.slowBy) > 0
	d.slowMu.Unlock()
	if was != now {
		d.daemonCondition(engine.ClassTrouble, troubleJournalSlow, now, detail)
	}
}

func (d *Daemon) notifyStopping() {
	_, _ = sddaemon.SdNotify(false, sddaemon.SdNotifyStopping)
}
