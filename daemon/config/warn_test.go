package config_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hallguard/hallguard/daemon/config"
)

// warnConfigs are valid configs that must load with exactly these
// warnings, each naming file, line and field like the errors do.
var warnConfigs = []struct {
	file string
	want []string
}{
	{"warn-unsupervised.yaml", []string{
		"testdata/warn-unsupervised.yaml:11: inputs[0].contact: warning: panic input wired NO is not supervised: a cut wire looks like rest and the input is dead unnoticed; wire it NC with stuck_after (a cut then raises the alarm and loop_open tamper)",
		"testdata/warn-unsupervised.yaml:12: inputs[1].contact: warning: callpoint input wired NO is not supervised: a cut wire looks like rest and the input is dead unnoticed; wire it NC with stuck_after (a cut then raises the alarm and loop_open tamper)",
		"testdata/warn-unsupervised.yaml:16: inputs[2].contact: warning: smoke input wired NO is not supervised: a cut wire looks like rest and the input is dead unnoticed; wire it NC with stuck_after (a cut then raises the alarm and loop_open tamper)",
		"testdata/warn-unsupervised.yaml:17: inputs[3].stuck_after: warning: NC panic input without stuck_after: a cut wire raises the alarm but never loop_open tamper, so the center cannot tell a cut from a press",
	}},
}

// TestUnsupervisedAlarmInputsWarn: hold-up, call-point and smoke inputs
// wired NO are loaded (careless, not invalid) with a warning each, and NC
// ones without stuck_after too; other kinds are not warned about.
func TestUnsupervisedAlarmInputsWarn(t *testing.T) {
	for _, tc := range warnConfigs {
		t.Run(strings.TrimSuffix(tc.file, ".yaml"), func(t *testing.T) {
			c, err := config.Load(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatalf("testdata/%s: %v", tc.file, err)
			}
			var got []string
			for _, w := range c.Warnings {
				if !w.Warning {
					t.Errorf("%v is not marked as a warning", w)
				}
				got = append(got, w.Error())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("testdata/%s warnings:\n got: %s\nwant: %s", tc.file, strings.Join(got, "\n      "), strings.Join(tc.want, "\n      "))
			}
		})
	}
}

// TestWarnConfigsListed keeps testdata and the table in step.
func TestWarnConfigsListed(t *testing.T) {
	files, _ := filepath.Glob("testdata/warn-*.yaml")
	for _, f := range files {
		if !slices.ContainsFunc(warnConfigs, func(w struct {
			file string
			want []string
		}) bool {
			return filepath.Join("testdata", w.file) == f
		}) {
			t.Errorf("%s has no entry in warnConfigs", f)
		}
	}
}

// TestProductionTemplateWiresAlarmsSupervised: configs/hallguard.yaml wires
// every hold-up, call-point and smoke input NC with stuck_after, so a cut
// wire gives the alarm and tamper, and it loads without a warning (so
// `hallguard check -strict` passes on it).
func TestProductionTemplateWiresAlarmsSupervised(t *testing.T) {
	c := productionTemplate(t)
	n := 0
	for _, in := range c.Inputs {
		switch in.Kind {
		case config.KindPanic, config.KindCallpoint, config.KindSmoke:
			n++
			if in.Contact != "NC" || in.StuckAfter.D() <= 0 {
				t.Errorf("input %s (%s): contact %s, stuck_after %s; want NC with stuck_after", in.ID, in.Kind, in.Contact, in.StuckAfter.D())
			}
		}
	}
	if n == 0 {
		t.Fatal("no alarm inputs in the template")
	}
	for _, w := range c.Warnings {
		t.Errorf("template warning: %v", w)
	}
}
