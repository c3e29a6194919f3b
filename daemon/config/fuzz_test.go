package config_test

import (
	"errors"
	"testing"

	"github.com/hallguard/hallguard/daemon/config"
)

// FuzzParse: whatever the bytes, Parse does not panic, gives either a
// config or config.Errors, and every error names its file and says what is
// wrong. The seeds are in testdata/fuzz/FuzzParse. Run:
//
//	go test -run='^$' -fuzz=FuzzParse -fuzztime=30s ./daemon/config/
//
// A Parse that loads the shipped playbooks takes a few milliseconds, so
// minimizing a new input can take most of a short run (execs then stand
// still at 0/sec); -fuzzminimizetime=1s keeps a short run fuzzing.
func FuzzParse(f *testing.F) {
	// The name anchors a relative playbooks_dir in testdata (good.yaml's
	// ../../../configs/playbooks, the invalid files' playbooks-min).
	const path = "testdata/fuzz.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse(path, data)
		if err == nil {
			if c == nil {
				t.Fatal("no error and no config")
			}
			return
		}
		if c != nil {
			t.Error("a config along with an error")
		}
		var es config.Errors
		if !errors.As(err, &es) {
			t.Fatalf("error %T %q, want config.Errors", err, err)
		}
		if len(es) == 0 {
			t.Fatal("empty config.Errors")
		}
		for _, e := range es {
			if e.File == "" || e.Msg == "" || e.Line < 0 {
				t.Errorf("FieldError %#v lacks its file or message", e)
			}
		}
		// The same bytes give the same errors (no map order in them).
		if _, again := config.Parse(path, data); again == nil || again.Error() != err.Error() {
			t.Errorf("second Parse gave\n%v\nfirst gave\n%v", again, err)
		}
	})
}
