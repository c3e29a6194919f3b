package test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// earlyExit is a pipeline stage that stops reading once it has what it
// wants: head, grep -q, grep -m.
var earlyExit = regexp.MustCompile(`\|\s*(head\b|grep\s+-[a-zA-Z]*[qm])`)

// TestPipefailScriptsReadWholePipes: under `set -o pipefail`, a stage
// that exits early (grep -m1, grep -q, head) can make the writer before it
// die of SIGPIPE (bash's echo writes line by line), so the pipeline fails
// although it found what it looked for. CI run 8 on a busy machine: `echo
// "$hdeps" | grep -m1 … || echo …` gave a package name of two lines and
// vmtest failed in "apt-get download" (7 wrong names in 6,000 runs with
// two CPU hogs, 0 with `grep -m1 … <<<"$hdeps"`). Every tracked shell
// script with pipefail reads its pipes whole.
func TestPipefailScriptsReadWholePipes(t *testing.T) {
	out, err := exec.Command("git", "-C", "..", "ls-files").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	checked := 0
	for _, f := range strings.Fields(string(out)) {
		b, err := os.ReadFile("../" + f)
		if err != nil || !strings.HasPrefix(string(b), "#!") || !strings.Contains(string(b), "pipefail") {
			continue
		}
		checked++
		for i, line := range strings.Split(string(b), "\n") {
			if code, _, _ := strings.Cut(line, " #"); earlyExit.MatchString(code) && !strings.HasPrefix(strings.TrimSpace(code), "#") {
				t.Errorf("%s:%d: a pipe that stops reading early under pipefail: %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
	if checked == 0 {
		t.Fatal("no shell script with pipefail found: the check checks nothing")
	}
}
