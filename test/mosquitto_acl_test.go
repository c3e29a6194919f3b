package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hallguard/hallguard/daemon/engine"
)

// TestMosquittoACLListsEveryVerb: the center may send every command verb
// the daemon knows, and nothing else under cmd/ (never cmd/reply), through
// configs/mosquitto/hallguard.acl. (TestSecurityMosquittoACL runs the ACL
// in Debian's mosquitto.)
func TestMosquittoACLListsEveryVerb(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "configs", "mosquitto", "hallguard.acl"))
	if err != nil {
		t.Fatal(err)
	}
	writes := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "topic write hallguard/+/cmd/"); ok {
			writes[v] = true
		}
	}
	for _, v := range engine.Verbs {
		if !writes[v.String()] {
			t.Errorf("hallguard.acl: the center may not write cmd/%s", v)
		}
		delete(writes, v.String())
	}
	for v := range writes {
		t.Errorf("hallguard.acl: the center may write cmd/%s, which is no verb", v)
	}
}
