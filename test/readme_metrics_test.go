package test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/arc"
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

// arcMetrics are exported only with an arc: section; the demo hall has
// none, so TestReadmeDocumentsARCMetrics scrapes one that has.
var arcMetrics = regexp.MustCompile(`^hallguard_arc_`)

func init() {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		return
	}
	for _, m := range regexp.MustCompile("`(hallguard_arc_[a-z0-9_]+)`").FindAllStringSubmatch(string(readme), -1) {
		optionalMetrics[m[1]] = true
	}
}

// TestReadmeDocumentsARCMetrics runs the demo hall with an arc: section
// (and `arc listen` in-process as its receiver) and checks that the
// hallguard_arc_* metrics it exports and the README's table agree.
func TestReadmeDocumentsARCMetrics(t *testing.T) {
	root := repoRoot(t)
	demo, err := os.ReadFile(filepath.Join(root, "configs", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go (&arc.Receiver{}).ServeTCP(ctx, ln)
	y := strings.NewReplacer("playbooks_dir: playbooks", "playbooks_dir: "+filepath.Join(root, "configs", "playbooks"),
		"key_file: demo-command.key", "key_file: "+filepath.Join(root, "configs", "demo-command.key")).Replace(string(demo))
	y += fmt.Sprintf("arc:\n  account: \"1234\"\n  category: SP4\n  receivers: [{name: primary, address: %q}]\n", ln.Addr().String())
	cfg := filepath.Join(t.TempDir(), "demo-arc.yaml")
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg)
	d.sim("press", "panic-teller-1")
	waitFor(t, 5*time.Second, func() bool {
		_, ok := metric(d.metrics(), `hallguard_arc_events_acked_total{path="primary"}`)
		return ok
	}, "the robbery to be ACKed over DC-09", d.logs)
	exported := map[string]bool{}
	for _, line := range strings.Split(d.metrics(), "\n") {
		if strings.HasPrefix(line, "# TYPE hallguard_arc_") {
			exported[strings.Fields(line)[2]] = true
		}
	}
	var missing, stale []string
	for name := range exported {
		if !optionalMetrics[name] {
			missing = append(missing, name)
		}
	}
	for name := range optionalMetrics {
		if arcMetrics.MatchString(name) && !exported[name] {
			stale = append(stale, name)
		}
	}
	// The dashboard and rules query these (comingMetrics in
	// ops_dashboard_test.go, as the demo has no arc:): they must exist here.
	series := scrapedNames(d.metrics())
	for name := range comingMetrics {
		if arcMetrics.MatchString(name) && !series[name] {
			stale = append(stale, name+" (queried by the dashboard or rules)")
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing) > 0 {
		t.Errorf("exported with arc: but not in the README's metrics table: %s", strings.Join(missing, ", "))
	}
	if len(stale) > 0 {
		t.Errorf("in the README but not exported with arc: %s", strings.Join(stale, ", "))
	}
}
