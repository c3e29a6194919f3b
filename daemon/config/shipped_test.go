package config_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hallguard/hallguard/daemon/config"
)

func TestDemoConfigLoads(t *testing.T) {
	cfg, err := config.Load(filepath.Join("..", "..", "configs", "demo.yaml"))
	if err != nil {
		t.Fatalf("configs/demo.yaml:\n%v", err)
	}
	if len(cfg.Playbooks) != 11 {
		t.Errorf("playbooks = %d, want the ten plans of §4 and duress", len(cfg.Playbooks))
	}
}

// planPlaybooks are the ten plans of §4.1 to §4.10, in order.
var planPlaybooks = []string{"surge", "system_failure", "robbery", "fire", "besieged",
	"disturbance", "illness", "injury", "lost_property", "media"}

func TestShippedPlaybooks(t *testing.T) {
	pbs, errs := config.LoadPlaybooks(filepath.Join("..", "..", "configs", "playbooks"))
	for _, e := range errs {
		t.Errorf("shipped playbook does not validate: %v", e)
	}
	byID := map[string]*config.Playbook{}
	for _, p := range pbs {
		byID[p.ID] = p
	}
	for i, id := range planPlaybooks {
		p := byID[id]
		if p == nil {
			t.Errorf("no %q playbook in configs/playbooks", id)
			continue
		}
		if want := "§4." + strconv.Itoa(i+1); p.Section != want {
			t.Errorf("%s: section %q, want %q", id, p.Section, want)
		}
		if filepath.Base(p.File) != id+".yaml" {
			t.Errorf("%s is in %s, want %s.yaml", id, p.File, id)
		}
	}
	if len(pbs) != len(planPlaybooks)+1 || byID["duress"] == nil {
		t.Errorf("%d playbooks, want the %d of §4 and duress (the console's duress PIN, §4.3)", len(pbs), len(planPlaybooks))
	}

	// §4.3 robbery: three cases, silent, resolved by the center alone.
	if r := byID["robbery"]; r != nil {
		var vs []string
		for _, v := range r.Variants {
			vs = append(vs, v.ID)
		}
		if want := []string{config.VariantArmed, config.VariantExplosive, config.VariantGas}; !slices.Equal(vs, want) {
			t.Errorf("robbery variants %v, want %v", vs, want)
		}
		if r.Mode != "silent" || r.ResolveBy != "center" {
			t.Errorf("robbery: mode %q, resolve_by %q; want silent, center (§4.3)", r.Mode, r.ResolveBy)
		}
		if !slices.Contains(r.Triggers, config.KindPanic) {
			t.Errorf("robbery triggers %v, want panic", r.Triggers)
		}
	}

	// Every step cites an item of its playbook's section, and of its
	// variant's section within a variant.
	// cites: "§4.4 3" cites §4.4 and "§4.3(a)1" §4.3(a), but "§4.10 1"
	// does not cite §4.1.
	item := regexp.MustCompile(`^§\d+\.\d+(\([a-z]\))?( ?\d+)?$`)
	cites := func(s, sec string) bool {
		rest, ok := strings.CutPrefix(s, sec)
		if !ok || !item.MatchString(s) {
			return false
		}
		return rest == "" || rest[0] < '0' || rest[0] > '9' || strings.HasSuffix(sec, ")")
	}
	for _, p := range pbs {
		for _, s := range p.Steps {
			if !cites(s.Section, p.Section) {
				t.Errorf("%s: step %s cites %q, not an item of %s", p.File, s.ID, s.Section, p.Section)
			}
		}
		for _, v := range p.Variants {
			if !cites(v.Section, p.Section) {
				t.Errorf("%s: variant %s cites %q, not a case of %s", p.File, v.ID, v.Section, p.Section)
			}
			for _, s := range v.Steps {
				if !cites(s.Section, v.Section) {
					t.Errorf("%s: step %s of variant %s cites %q, not an item of %s", p.File, s.ID, v.ID, s.Section, v.Section)
				}
			}
		}
	}
}

// productionTemplate parses configs/hallguard.yaml, the template
// installers copy to /etc/hallguard, with its playbooks_dir (the installed
// /etc/hallguard/playbooks, on one line) pointed at the shipped ones.
func productionTemplate(t *testing.T) *config.Config {
	t.Helper()
	path := filepath.Join("..", "..", "configs", "hallguard.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := filepath.Abs(filepath.Join("..", "..", "configs", "playbooks"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^playbooks_dir: /etc/hallguard/playbooks$`)
	if n := len(re.FindAll(data, -1)); n != 1 {
		t.Fatalf("%s: %d lines \"playbooks_dir: /etc/hallguard/playbooks\", want 1", path, n)
	}
	data = re.ReplaceAll(data, []byte("playbooks_dir: "+shipped))
	c, err := config.Parse(path, data)
	if err != nil {
		t.Fatalf("%s:\n%v", path, err)
	}
	return c
}

// TestProductionTemplate: configs/hallguard.yaml, the template installers
// copy to /etc/hallguard, validates. Its playbooks_dir is the installed
// /etc/hallguard/playbooks; the test points it at the shipped ones.
func TestProductionTemplate(t *testing.T) {
	c := productionTemplate(t)
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"backend", c.Backend, "gpiocdev"},
		{"mqtt.broker", c.MQTT.Broker, "ssl://center.example:8883"},
		{"mqtt.password_file", c.MQTT.PasswordFile, "/run/credentials/hallguard.service/mqtt-password"},
		{"mqtt.tls.ca_file", c.MQTT.TLS.CAFile, "/etc/hallguard/tls/ca.pem"},
		{"commands.auth", c.Commands.Auth, "hmac"},
		{"http.listen", c.HTTP.Listen, "127.0.0.1:9464"},
		{"state_dir", c.StateDir, "/var/lib/hallguard"},
		{"playbooks", len(c.Playbooks), 11},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	// The outputs' safety flags (§4.3 silent, §1 3 drills).
	for _, tc := range []struct {
		id                          string
		audible, silentOK, liveOnly bool
	}{
		{"siren", true, false, false},
		{"strobe", false, false, false},
		{"door-release", false, false, false},
		{"power-cut", false, false, true},
		{"police-link", false, true, false},
	} {
		o := c.Output(tc.id)
		if o == nil {
			t.Errorf("no output %s", tc.id)
			continue
		}
		if o.FailSafe != "inactive" || o.Audible != tc.audible || o.SilentOK != tc.silentOK || o.LiveOnly != tc.liveOnly {
			t.Errorf("output %s: fail_safe %s audible %v silent_ok %v live_only %v; want inactive %v %v %v",
				tc.id, o.FailSafe, o.Audible, o.SilentOK, o.LiveOnly, tc.audible, tc.silentOK, tc.liveOnly)
		}
	}
	// Every output a shipped playbook drives exists in the template.
	for _, p := range c.Playbooks {
		for _, po := range p.Outputs {
			if c.Output(po.Output) == nil {
				t.Errorf("%s drives output %q, which configs/hallguard.yaml lacks", p.File, po.Output)
			}
		}
	}
}
