package daemon

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hallguard/hallguard/daemon/config"
)

// ErrNeedsRestart marks a reload refused because it changes what only a
// restart can change (lines, MQTT, HTTP, storage, the hall's id, the
// business-system probe).
var ErrNeedsRestart = fmt.Errorf("needs a restart")

type reloadMetrics struct {
	success prometheus.Gauge
	last    prometheus.Gauge
	total   *prometheus.CounterVec
}

func newReloadMetrics(r *prometheus.Registry) *reloadMetrics {
	m := &reloadMetrics{
		success: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hallguard_config_last_reload_successful",
			Help: "1 if the last config reload succeeded (or none was tried), 0 if it was rejected and the old config runs on."}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hallguard_config_last_reload_success_timestamp_seconds",
			Help: "When the config was last loaded successfully (start or reload)."}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hallguard_config_reloads_total",
			Help: "Config reloads, by result (ok, invalid, needs_restart)."}, []string{"result"}),
	}
	r.MustRegister(m.success, m.last, m.total)
	m.success.Set(1)
	for _, res := range []string{"ok", "invalid", "needs_restart"} {
		m.total.WithLabelValues(res)
	}
	return m
}

// Reload loads the config file again and applies it: the one path behind
// SIGHUP and POST /-/reload. A config with errors, or one that changes what
// only a restart can change, is rejected with its errors, journalled and
// counted, and the old config keeps running.
func (d *Daemon) Reload() error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	path := d.cfg.File
	next, err := config.Load(path)
	if err == nil && d.adjust != nil {
		d.adjust(next)
	}
	result := "ok"
	if err != nil {
		result = "invalid"
	} else {
		diff := restartOnly(d.cfg, next)
		if keyDigest(next) != d.keyDigest {
			diff = append(diff, "the command key in commands.key_file")
		}
		if len(diff) > 0 {
			result = "needs_restart"
			err = fmt.Errorf("%s: %w: %s changed", path, ErrNeedsRestart, strings.Join(diff, ", "))
		}
	}
	rec := map[string]any{"event": "reload", "file": path, "result": result}
	// reject counts and journals a refused reload: the old config runs on.
	reject := func(result string, err error) {
		d.reloads.total.WithLabelValues(result).Inc()
		d.reloads.success.Set(0)
		rec["result"], rec["error"] = result, err.Error()
		d.rec.add("config", "", "", false, rec)
	}
	if err != nil {
		reject(result, err)
		d.log.Error("config reload rejected; the old config keeps running", "file", path, "result", result)
		for _, line := range strings.Split(err.Error(), "\n") {
			d.log.Error("config reload", "err", line)
		}
		return err
	}
	// Everything that reads the config switches at once (issue #11 item
	// 14): the console, the engine and the daemon's own readers. The
	// console's part is checked first: if it cannot take next, nothing
	// switches and the reload is refused.
	apply := func() {
		d.eng.Reconfigure(next)
		d.live.Store(next)
	}
	if d.console != nil {
		err = d.console.Switch(next, apply)
	} else {
		apply()
	}
	if err != nil {
		reject("invalid", err)
		d.log.Error("config reload rejected; the old config keeps running", "file", path, "err", err)
		return err
	}
	d.reloads.success.Set(1)
	d.reloads.last.SetToCurrentTime()
	rec["sha256"] = next.Digest()
	rec["playbooks"] = len(next.Playbooks)
	d.reloads.total.WithLabelValues(result).Inc()
	d.rec.add("config", "", "", false, rec)
	d.log.Info("config reloaded", "file", path, "playbooks", len(next.Playbooks))
	return nil
}

// restartOnly lists the sections that differ and cannot change live.
func restartOnly(old, next *config.Config) []string {
	var diff []string
	for _, s := range []struct {
		name string
		a, b any
	}{
		{"hall.id", old.Hall.ID, next.Hall.ID}, {"backend", old.Backend, next.Backend}, {"gpio", old.GPIO, next.GPIO},
		{"inputs", old.Inputs, next.Inputs}, {"outputs", old.Outputs, next.Outputs}, {"mqtt", old.MQTT, next.MQTT},
		{"http", old.HTTP, next.HTTP}, {"state_dir", old.StateDir, next.StateDir}, {"commands", old.Commands, next.Commands},
		{"journal", old.Journal, next.Journal}, {"arc", old.ARC, next.ARC},
		// Read once at start by the probe loop (probe.go).
		{"probe", old.Probe, next.Probe},
		// Announced once to Home Assistant as the device's name.
		{"hall.name (Home Assistant discovery)", discoveryName(old), discoveryName(next)},
		{"cctv.reply_topic", old.CCTV.ReplyTopic, next.CCTV.ReplyTopic}, // subscribed at start (side.go)
	} {
		if !reflect.DeepEqual(s.a, s.b) {
			diff = append(diff, s.name)
		}
	}
	return diff
}

// discoveryName is the hall name Home Assistant was told, "" without
// discovery.
func discoveryName(c *config.Config) string {
	if !c.MQTT.Discovery.Enabled {
		return ""
	}
	return c.Hall.Name
}
