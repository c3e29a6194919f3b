package test

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestTemplateCredentialPathsMatchTheUnit (issue #12 §7): the production
// template tells the installer where the credentials come from and where
// the daemon reads them; both must be what systemd/hallguard.service
// loads, or a box installed by the book starts without its secrets.
func TestTemplateCredentialPathsMatchTheUnit(t *testing.T) {
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(repoRoot(t), p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tpl, unit := read("configs/hallguard.yaml"), read("systemd/hallguard.service")
	loads := regexp.MustCompile(`(?m)^#?\s*LoadCredential=([a-z-]+):(\S+)$`)
	set := func(text string) []string {
		var out []string
		for _, m := range loads.FindAllStringSubmatch(text, -1) {
			out = append(out, m[1]+":"+m[2])
		}
		sort.Strings(out)
		return out
	}
	inUnit, inTemplate := set(unit), set(tpl)
	if len(inUnit) == 0 {
		t.Fatal("no LoadCredential= in systemd/hallguard.service")
	}
	if strings.Join(inTemplate, " ") != strings.Join(inUnit, " ") {
		t.Errorf("configs/hallguard.yaml names credentials %v; systemd/hallguard.service loads %v", inTemplate, inUnit)
	}
	// Every file the template reads under the credentials directory is
	// one the unit loads.
	names := map[string]bool{}
	for _, c := range inUnit {
		names[strings.SplitN(c, ":", 2)[0]] = true
	}
	used := regexp.MustCompile(`/run/credentials/hallguard\.service/([a-z-]+)`).FindAllStringSubmatch(tpl, -1)
	if len(used) == 0 {
		t.Fatal("the template reads no credential")
	}
	for _, m := range used {
		if !names[m[1]] {
			t.Errorf("configs/hallguard.yaml reads credential %q, which the unit does not load", m[1])
		}
	}
}
