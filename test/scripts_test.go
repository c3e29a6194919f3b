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

// fuzzDuration is a -fuzztime or -fuzzminimizetime given as a duration.
var fuzzDuration = regexp.MustCompile(`-fuzz(minimize)?time[= ]\S*[0-9](ns|us|ms|s|m|h)\b`)

// TestFuzzBudgetsAreCounts: a duration-based -fuzztime lets Go's fuzz
// coordinator report its own deadline as a failure on a busy machine
// ("context deadline exceeded" and no failing input: golang/go#75804,
// fixed in Go 1.27). CI run 10 failed FuzzParse so. Every fuzz budget the
// project's scripts and Makefile give is a count (Nx).
func TestFuzzBudgetsAreCounts(t *testing.T) {
	found := 0
	for _, f := range []string{"../.ci/run", "../Makefile"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "-fuzz=") {
				found++
			}
			if fuzzDuration.MatchString(line) && !strings.HasPrefix(strings.TrimSpace(line), "#") {
				t.Errorf("%s:%d: a fuzz budget given as a duration: %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
	if found == 0 {
		t.Fatal("no fuzz run found in .ci/run or the Makefile: the check checks nothing")
	}
}

// byName is a command that stops processes by name rather than by PID.
var byName = regexp.MustCompile(`(^|[;&|(\s])(pkill|killall)\b`)

// TestScriptsStopProcessesByPIDOnly: .ci/run once ended every mosquitto on
// the machine (`pkill -x mosquitto`), which may be a broker someone else
// runs (issue #13). Every tracked script and Makefile stops only what it
// started, by PID: none runs pkill or killall.
func TestScriptsStopProcessesByPIDOnly(t *testing.T) {
	out, err := exec.Command("git", "-C", "..", "ls-files").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	checked := 0
	for _, f := range strings.Fields(string(out)) {
		b, err := os.ReadFile("../" + f)
		if err != nil || !(strings.HasPrefix(string(b), "#!") || strings.HasSuffix(f, "Makefile")) {
			continue
		}
		checked++
		for i, line := range strings.Split(string(b), "\n") {
			if code, _, _ := strings.Cut(line, "#"); byName.MatchString(code) {
				t.Errorf("%s:%d: stops processes by name: %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
	if checked == 0 {
		t.Fatal("no script found: the check checks nothing")
	}
}
