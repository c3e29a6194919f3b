package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunRefusesLocalListenOffLoopback (issue #12 §2): the command line
// cannot open the console and API to the network where the config file
// could not.
func TestRunRefusesLocalListenOffLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":9465", "192.0.2.1:9465"} {
		var stdout, stderr bytes.Buffer
		code := run([]string{"run", "-config", filepath.Join("..", "..", "..", "configs", "demo.yaml"), "-state-dir", t.TempDir(),
			"-local-listen", addr}, &stdout, &stderr)
		if code != exitConfig || !strings.Contains(stderr.String(), "loopback") {
			t.Errorf("-local-listen %s: exit %d, %q; want exit 2 naming the loopback rule", addr, code, stderr.String())
		}
	}
}
