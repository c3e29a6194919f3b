package test

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestReadmeDocumentsEveryMetric scrapes the real binary and checks that
// every hallguard_* metric it exports is in the README's metrics table (the
// metrics contract operations relies on), and that the README names none
// that does not exist.
func TestReadmeDocumentsEveryMetric(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml")
	d.sim("press", "panic-teller-1") // so that per-incident series exist
	waitFor(t, 5*time.Second, func() bool {
		_, ok := metric(d.metrics(), `hallguard_incidents_total{drill="false",origin="button",playbook="robbery"}`)
		return ok
	}, "the robbery to be counted", d.logs)
	exported := map[string]bool{}
	for _, line := range strings.Split(d.metrics(), "\n") {
		if strings.HasPrefix(line, "# TYPE hallguard_") {
			exported[strings.Fields(line)[2]] = true
		}
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	sec := string(readme)
	if i := strings.Index(sec, "## Metrics"); i >= 0 {
		sec = sec[i:]
		if j := strings.Index(sec[3:], "\n## "); j >= 0 {
			sec = sec[:j+3]
		}
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`(hallguard_[a-z0-9_]+)`").FindAllStringSubmatch(sec, -1) {
		documented[m[1]] = true
	}
	var missing, stale []string
	for name := range exported {
		if !documented[name] {
			missing = append(missing, name)
		}
	}
	for name := range documented {
		if !exported[name] && !optionalMetrics[name] {
			stale = append(stale, name)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing) > 0 {
		t.Errorf("exported but not in the README's metrics table: %s", strings.Join(missing, ", "))
	}
	if len(stale) > 0 {
		t.Errorf("in the README but not exported: %s", strings.Join(stale, ", "))
	}
}

// optionalMetrics are documented but exported only with some config.
var optionalMetrics = map[string]bool{
	"hallguard_reports_awaiting_center": true, // mqtt.ack_topic
	"hallguard_probe_up":                true, // probe:
}
