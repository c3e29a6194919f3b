package config_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hallguard/hallguard/daemon/config"
)

type playbookCase struct {
	dir  string
	want []string
}

// invalidPlaybooks holds, for each testdata/playbooks-invalid-<rule>/
// folder, the exact errors LoadPlaybooks gives for it.
var invalidPlaybooks = []playbookCase{
	{"playbooks-invalid-unknown-field", []string{`testdata/playbooks-invalid-unknown-field/surge.yaml:9: priority: unknown field`}},
	{"playbooks-invalid-duration", []string{`testdata/playbooks-invalid-duration/surge.yaml:14: escalation[0].after: bad duration "soon" (want e.g. 30s, 5m, 2d)`}},
	{"playbooks-invalid-id", []string{`testdata/playbooks-invalid-id/surge.yaml:2: id: required: lower-case letters, digits, '-' or '_'`}},
	{"playbooks-invalid-duplicate-id", []string{`testdata/playbooks-invalid-duplicate-id/b-surge.yaml:2: id: playbook "surge" already defined in testdata/playbooks-invalid-duplicate-id/a-surge.yaml`}},
	{"playbooks-invalid-section", []string{`testdata/playbooks-invalid-section/surge.yaml:3: section: "4.1" must cite the plan, e.g. §4.4`}},
	{"playbooks-invalid-title", []string{`testdata/playbooks-invalid-title/surge.yaml:4: title: needs zh and en`}},
	{"playbooks-invalid-type", []string{`testdata/playbooks-invalid-type/surge.yaml:5: type: needs zh and en (§3.3 3)`}},
	{"playbooks-invalid-mode", []string{`testdata/playbooks-invalid-mode/surge.yaml:6: mode: "quiet": want silent or audible`}},
	{"playbooks-invalid-resolve-by", []string{`testdata/playbooks-invalid-resolve-by/surge.yaml:9: resolve_by: "anyone": want center or hall`}},
	{"playbooks-invalid-silent-hall", []string{`testdata/playbooks-invalid-silent-hall/surge.yaml:9: resolve_by: a silent playbook is resolved only by the center (§4.3)`}},
	{"playbooks-invalid-trigger", []string{`testdata/playbooks-invalid-trigger/surge.yaml:7: triggers[1]: unknown trigger "doorbell"`}},
	{"playbooks-invalid-not-manual", []string{`testdata/playbooks-invalid-not-manual/surge.yaml:8: manual: a playbook with no triggers must be manual`}},
	{"playbooks-invalid-output", []string{`testdata/playbooks-invalid-output/surge.yaml:11: outputs[0].output: required`}},
	{"playbooks-invalid-escalation-order", []string{`testdata/playbooks-invalid-escalation-order/surge.yaml:16: escalation[1].after: escalation times must increase (got 5m0s after 10m0s)`}},
	{"playbooks-invalid-escalation-role-missing", []string{`testdata/playbooks-invalid-escalation-role-missing/surge.yaml:16: escalation[1].role: required`}},
	{"playbooks-invalid-step-id-missing", []string{`testdata/playbooks-invalid-step-id-missing/surge.yaml:22: steps[1].id: required`}},
	{"playbooks-invalid-step-id-duplicate", []string{`testdata/playbooks-invalid-step-id-duplicate/surge.yaml:22: steps[1].id: step "open_counters" defined twice`}},
	{"playbooks-invalid-step-section", []string{`testdata/playbooks-invalid-step-section/surge.yaml:23: steps[1].section: "4.1 item 2" must cite an item of §4.1`}},
	{"playbooks-invalid-step-section-other", []string{`testdata/playbooks-invalid-step-section-other/surge.yaml:23: steps[1].section: "§4.10 2" must cite an item of §4.1`}},
	{"playbooks-invalid-step-text", []string{`testdata/playbooks-invalid-step-text/surge.yaml:24: steps[1].text: needs zh and en`}},
	{"playbooks-invalid-action", []string{`testdata/playbooks-invalid-action/surge.yaml:25: steps[1].action: unknown action "lock_doors" (want preserve_cctv)`}},
	{"playbooks-invalid-record", []string{`testdata/playbooks-invalid-record/surge.yaml:25: steps[1].records[1]: unknown record "photo" (want witness, message, count or note)`}},
	{"playbooks-invalid-variant-id", []string{`testdata/playbooks-invalid-variant-id/surge.yaml:26: variants[0].id: required`}},
	// No steps key, so no line to point at.
	{"playbooks-invalid-no-steps", []string{`testdata/playbooks-invalid-no-steps/surge.yaml: steps: a playbook needs steps`}},
	{"no-such-folder", []string{`testdata/no-such-folder: playbooks_dir: no playbook files (*.yaml) in testdata/no-such-folder`}},
}

func TestInvalidPlaybooks(t *testing.T) {
	for _, tc := range invalidPlaybooks {
		t.Run(tc.dir, func(t *testing.T) {
			_, errs := config.LoadPlaybooks(filepath.Join("testdata", tc.dir))
			got := make([]string, len(errs))
			for i, e := range errs {
				got[i] = e.Error()
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("testdata/%s:\n got:\n%s\nwant:\n%s", tc.dir, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestInvalidPlaybooksListed keeps testdata and the table in step.
func TestInvalidPlaybooksListed(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/playbooks-invalid-*")
	for _, d := range dirs {
		if !slices.ContainsFunc(invalidPlaybooks, func(tc playbookCase) bool { return tc.dir == filepath.Base(d) }) {
			t.Errorf("%s has no entry in invalidPlaybooks", d)
		}
	}
}

func TestPlaybookFixturesValid(t *testing.T) {
	for _, dir := range []string{"playbooks-min", "playbooks-missing"} {
		if _, errs := config.LoadPlaybooks(filepath.Join("testdata", dir)); len(errs) > 0 {
			t.Errorf("testdata/%s:\n%v", dir, errs)
		}
	}
}

func TestStepsFor(t *testing.T) {
	pbs, errs := config.LoadPlaybooks("../../configs/playbooks")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var robbery *config.Playbook
	for _, p := range pbs {
		if p.ID == "robbery" {
			robbery = p
		}
	}
	if robbery == nil {
		t.Fatal("no robbery playbook")
	}
	// robbery has no common steps; each case has the plan's items.
	for _, tc := range []struct {
		variant string
		first   string // section of the first step
		n       int
	}{
		{"armed", "§4.3(a)1", 3},
		{"explosive", "§4.3(b)1", 3},
		{"gas", "§4.3(c)1", 2},
		{"knife", "", 0},
	} {
		steps := robbery.StepsFor(tc.variant)
		if len(steps) != tc.n || tc.n > 0 && steps[0].Section != tc.first {
			t.Errorf("StepsFor(%q): %d steps, want %d starting at %s", tc.variant, len(steps), tc.n, tc.first)
		}
		if (robbery.Variant(tc.variant) != nil) != (tc.n > 0) {
			t.Errorf("Variant(%q) = %v", tc.variant, robbery.Variant(tc.variant))
		}
	}
}
