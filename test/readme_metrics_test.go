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

	"github.com/hallguard/hallguard/test/hallproc"
)

// TestReadmeDocumentsEveryMetric scrapes the real binary and checks that
// every hallguard_* metric it exports is in the README's metrics table (the
// metrics contract operations relies on), and that the README names none
// that does not exist.
func TestReadmeDocumentsEveryMetric(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml")
	d.sim("press", "panic-teller-1") // so that per-incident series exist
	waitFor(t, 5*time.Second, func() bool {
		_, ok := hallproc.Sample(d.metrics(), `hallguard_incidents_total{drill="false",origin="button",playbook="robbery"}`)
		return ok
	}, "the robbery to be counted", d.logs)
	exported := typedMetrics(d.metrics(), "hallguard_")
	sec := readme(t)
	if i := strings.Index(sec, "## Metrics"); i >= 0 {
		sec = sec[i:]
		if j := strings.Index(sec[3:], "\n## "); j >= 0 {
			sec = sec[:j+3]
		}
	}
	missing, stale := compareMetrics(exported, documentedMetrics(sec, "hallguard_"),
		func(name string) bool { return optionalMetrics[name] || arcMetrics.MatchString(name) })
	checkMetricNames(t, "", missing, stale)
}

// optionalMetrics are documented but exported only with some config.
var optionalMetrics = map[string]bool{
	"hallguard_reports_awaiting_center": true, // mqtt.ack_topic
	"hallguard_probe_up":                true, // probe:
}

// arcMetrics are exported only with an arc: section; the demo hall has
// none, so TestReadmeDocumentsARCMetrics scrapes one that has.
var arcMetrics = regexp.MustCompile(`^hallguard_arc_`)

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// typedMetrics returns the metrics whose name starts with prefix that a
// scrape declares (# TYPE lines).
func typedMetrics(text, prefix string) map[string]bool {
	names := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "# TYPE "+prefix) {
			names[strings.Fields(line)[2]] = true
		}
	}
	return names
}

// documentedMetrics returns the `names` in text that start with prefix.
func documentedMetrics(text, prefix string) map[string]bool {
	names := map[string]bool{}
	for _, m := range regexp.MustCompile("`("+prefix+"[a-z0-9_]+)`").FindAllStringSubmatch(text, -1) {
		names[m[1]] = true
	}
	return names
}

// compareMetrics returns the exported metrics not documented, and the
// documented ones not exported unless optional (when not nil) says so.
func compareMetrics(exported, documented map[string]bool, optional func(string) bool) (missing, stale []string) {
	for name := range exported {
		if !documented[name] {
			missing = append(missing, name)
		}
	}
	for name := range documented {
		if !exported[name] && (optional == nil || !optional(name)) {
			stale = append(stale, name)
		}
	}
	return missing, stale
}

// checkMetricNames fails t with the metrics exported (with what) but not
// documented, and those documented but not exported.
func checkMetricNames(t *testing.T, with string, missing, stale []string) {
	t.Helper()
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing) > 0 {
		t.Errorf("exported%s but not in the README's metrics table: %s", with, strings.Join(missing, ", "))
	}
	if len(stale) > 0 {
		t.Errorf("in the README but not exported%s: %s", with, strings.Join(stale, ", "))
	}
}

// TestReadmeDocumentsARCMetrics runs the demo hall with an arc: section
// (and `arc listen` in-process as its receiver) and checks that the
// hallguard_arc_* metrics it exports and the README agree.
func TestReadmeDocumentsARCMetrics(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go (&arc.Receiver{}).ServeTCP(ctx, ln)
	cfg := demoConfigCopy(t, func(s string) string {
		return s + fmt.Sprintf("arc:\n  account: \"1234\"\n  category: SP4\n  receivers: [{name: primary, address: %q}]\n", ln.Addr().String())
	})
	d := startDaemon(t, cfg)
	d.sim("press", "panic-teller-1")
	waitFor(t, 5*time.Second, func() bool {
		_, ok := hallproc.Sample(d.metrics(), `hallguard_arc_events_acked_total{path="primary"}`)
		return ok
	}, "the robbery to be ACKed over DC-09", d.logs)
	exported := typedMetrics(d.metrics(), "hallguard_arc_")
	missing, stale := compareMetrics(exported, documentedMetrics(readme(t), "hallguard_arc_"), nil)
	// The dashboard and rules query these (comingMetrics in
	// ops_dashboard_test.go, as the demo has no arc:): they must exist here.
	series := scrapedNames(d.metrics())
	for name := range comingMetrics {
		if arcMetrics.MatchString(name) && !series[name] {
			stale = append(stale, name+" (queried by the dashboard or rules)")
		}
	}
	checkMetricNames(t, " with arc:", missing, stale)
}
