package daemon

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hallguard/hallguard/daemon/config"
)

// renderConfig fills in the template's @...@ placeholders from vars.
func renderConfig(t *testing.T, vars map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "hallguard-vm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for k, v := range vars {
		s = strings.ReplaceAll(s, "@"+k+"@", v)
	}
	if m := regexp.MustCompile(`@[A-Z_]+@`).FindString(s); m != "" {
		t.Fatalf("config template: %s has no value", m)
	}
	return s
}

// writeConfig renders the template into dir/hallguard.yaml with a command
// key in dir/command.key and returns the config's path.
func writeConfig(t *testing.T, dir string, vars map[string]string, key []byte) string {
	t.Helper()
	path := filepath.Join(dir, "hallguard.yaml")
	if err := os.WriteFile(path, []byte(renderConfig(t, vars)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "command.key"), append(key, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigTemplate runs on the host (the VM test runs `hallguard check`
// on the same template instead): the template loads with the repository's
// playbooks, and every line it names is on the VM's simulated chip.
func TestConfigTemplate(t *testing.T) {
	if os.Getenv("HALLGUARD_VMTEST") != "" {
		t.Skip("inside the VM: TestHallguardCheck checks the rendered config")
	}
	playbooks, err := filepath.Abs(filepath.Join("..", "..", "..", "..", "configs", "playbooks"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := writeConfig(t, dir, map[string]string{
		"CHIP": "gpiochip0", "DEBOUNCE": "25ms", "VERIFY_WINDOW": "2s",
		"MQTT_LISTEN": "127.0.0.1:1883", "HTTP_LISTEN": "127.0.0.1:9464",
		"STATE_DIR": filepath.Join(dir, "state"), "PLAYBOOKS_DIR": playbooks,
	}, []byte("0123456789abcdef0123456789abcdef"))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	if cfg.Backend != "gpiocdev" || cfg.Playbook("robbery") == nil || cfg.Playbook("fire") == nil {
		t.Fatalf("backend %s, playbooks %d", cfg.Backend, len(cfg.Playbooks))
	}
	initScript, err := os.ReadFile(filepath.Join("..", "init"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^LINE_NAMES="([^"]*)"`).FindSubmatch(initScript)
	if m == nil {
		t.Fatal("no LINE_NAMES in ../init")
	}
	lines := map[string]bool{}
	for _, n := range strings.Fields(string(m[1])) {
		lines[n] = true
	}
	for _, in := range cfg.Inputs {
		if !lines[in.LineName] {
			t.Errorf("input %s: line %q is not in init's LINE_NAMES", in.ID, in.LineName)
		}
	}
	for _, o := range cfg.Outputs {
		if !lines[o.LineName] {
			t.Errorf("output %s: line %q is not in init's LINE_NAMES", o.ID, o.LineName)
		}
	}
}
