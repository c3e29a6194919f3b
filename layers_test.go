package hallguard_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is this repository's module path.
const module = "github.com/hallguard/hallguard"

// layer is one rule of ARCHITECTURE.md: packages matching from (and no
// pattern of except) may not depend (directly or through others) on
// anything deny matches, except what allow matches first. Patterns are import paths relative to the module,
// or a full path for outside modules; a trailing "/..." matches a subtree.
type layer struct {
	why    string
	from   string
	except []string
	allow  []string
	deny   []string
}

// Model: node_exporter's depguard rules, as a plain test over go list.
var layers = []layer{
	{why: "devices are the bottom layer: they know nothing of the daemon or the transport",
		from: "devices/...", deny: []string{"daemon/...", "mqtt/...", "arc/...", "outbox/..."}},
	{why: "the engine is pure decision logic: config, devices and the clock only",
		from:  "daemon/engine",
		allow: []string{"daemon/engine", "daemon/config", "devices", "devices/clock"},
		deny:  []string{"..."}},
	{why: "the business-system probe checks and reports through callbacks: config and the clock only",
		from:  "daemon/probe",
		allow: []string{"daemon/probe", "daemon/config", "devices/clock"},
		deny:  []string{"..."}},
	{why: "the journal keeps the outbox contract, not the transport",
		from: "daemon/journal", deny: []string{"github.com/eclipse/paho.mqtt.golang/...", "github.com/gorilla/websocket/...", "mqtt/..."}},
	{why: "the outbox contract has no transport",
		from: "outbox", deny: []string{"github.com/eclipse/paho.mqtt.golang/...", "mqtt/...", "daemon/journal/..."}},
	{why: "the main package is the top: nothing imports it",
		from: "...", deny: []string{"daemon/cmd/..."}},
	{why: "test/hallproc is harness code: only the whole-binary tests, the bench and the vmtest tests use it",
		from: "...", except: []string{"test/...", "devices/gpiocdev/vmtest/..."}, deny: []string{"test/hallproc"}},
	{why: "devices/simchip is test code: only _test files and the vmtest tests use it",
		from: "...", except: []string{"devices/simchip", "devices/gpiocdev/vmtest/..."}, deny: []string{"devices/simchip"}},
}

func match(pattern, pkg string) bool {
	full := pattern
	if !strings.HasPrefix(pattern, "github.com/") {
		full = module + "/" + pattern
		if pattern == "..." {
			full = module + "/..."
		}
	}
	if rest, ok := strings.CutSuffix(full, "/..."); ok {
		return pkg == rest || strings.HasPrefix(pkg, rest+"/")
	}
	return pkg == full
}

// deps lists, per package of the module, every package it depends on
// (go list -deps), the package itself left out.
func deps(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, module+"/...")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		m[f[0]] = f[1:]
	}
	return m
}

// TestLayers enforces ARCHITECTURE.md's import rules. It fails naming the
// package, the forbidden dependency and the rule.
func TestLayers(t *testing.T) {
	all := deps(t)
	checked := 0
	for _, l := range layers {
		for pkg, ds := range all {
			if !match(l.from, pkg) || slices.ContainsFunc(l.except, func(x string) bool { return match(x, pkg) }) {
				continue
			}
			checked++
		dep:
			for _, d := range ds {
				if d == pkg || !strings.Contains(d, ".") && !strings.HasPrefix(d, module) {
					continue // the standard library
				}
				for _, a := range l.allow {
					if match(a, d) {
						continue dep
					}
				}
				for _, x := range l.deny {
					if match(x, d) {
						t.Errorf("%s depends on %s: %s", strings.TrimPrefix(pkg, module+"/"), d, l.why)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no package matched any rule: is the module path right?")
	}
}
