package test

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hallguard/hallguard/test/hallproc"
)

// TestReloadOnSIGHUP sends SIGHUP to the running binary with a good config,
// a bad one and one that changes a line: the good one is applied, the
// others are rejected with their errors while the old config runs on.
func TestReloadOnSIGHUP(t *testing.T) {
	path := demoConfigCopy(t, nil)
	d := startDaemon(t, path)
	hup := func(edit func(string) string, wantResult string, wantCount string) {
		t.Helper()
		b, _ := os.ReadFile(path)
		if err := os.WriteFile(path, []byte(edit(string(b))), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := d.p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		label := `hallguard_config_reloads_total{result="` + wantResult + `"}`
		waitFor(t, 10*time.Second, func() bool {
			v, _ := hallproc.Sample(d.metrics(), label)
			return v == wantCount
		}, label+" = "+wantCount, d.logs)
	}

	// A good change: the supervisor's contact (§2).
	hup(func(s string) string { return strings.Replace(s, "+86-10-5550-0101", "+86-10-5550-0999", 1) }, "ok", "1")
	if v, _ := hallproc.Sample(d.metrics(), "hallguard_config_last_reload_successful"); v != "1" {
		t.Errorf("last reload successful = %s after a good config", v)
	}

	// A bad one: an unknown field. Rejected with file, line and field.
	hup(func(s string) string { return strings.Replace(s, "surge_length: 30", "surge_lenght: 30", 1) }, "invalid", "1")
	if v, _ := hallproc.Sample(d.metrics(), "hallguard_config_last_reload_successful"); v != "0" {
		t.Errorf("last reload successful = %s after a bad config", v)
	}
	if !strings.Contains(d.logs.String(), "queue.surge_lenght: unknown field") {
		t.Errorf("the log does not name the bad field:\n%s", d.logs)
	}

	// One that moves a panic button to another line: needs a restart.
	hup(func(s string) string {
		s = strings.Replace(s, "surge_lenght: 30", "surge_length: 30", 1)
		return strings.Replace(s, "variant: armed, line: 17", "variant: armed, line: 4", 1)
	}, "needs_restart", "1")
	if !strings.Contains(d.logs.String(), "inputs changed") {
		t.Errorf("the log does not say what needs a restart:\n%s", d.logs)
	}

	// The old config still runs: the panic button on its old line works.
	d.sim("press", "panic-teller-1")
	waitFor(t, 5*time.Second, func() bool {
		v, _ := hallproc.Sample(d.metrics(), `hallguard_incidents_total{drill="false",origin="button",playbook="robbery"}`)
		return v == "1"
	}, "a robbery after the rejected reloads", d.logs)
	if d.p.Cmd.ProcessState != nil {
		t.Fatalf("daemon exited")
	}
}
