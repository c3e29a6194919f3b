package daemon

import (
	"context"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
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
// systemd restarts the daemon.
func (d *Daemon) watchdog(ctx context.Context) {
	interval, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil {
		d.log.Warn("systemd watchdog", "err", err)
		return
	}
	if interval <= 0 {
		return
	}
	d.log.Info("systemd watchdog enabled", "interval_seconds", interval.Seconds())
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pinged := make(chan struct{})
		go func() { d.eng.Ping(); close(pinged) }()
		select {
		case <-pinged:
		case <-ctx.Done():
			return
		}
		if _, err := sddaemon.SdNotify(false, sddaemon.SdNotifyWatchdog); err != nil {
			d.log.Warn("sd_notify WATCHDOG", "err", err)
		}
	}
}

func (d *Daemon) notifyStopping() {
	_, _ = sddaemon.SdNotify(false, sddaemon.SdNotifyStopping)
}
