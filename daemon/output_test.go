package daemon_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/devices"
	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/devices/sim"
)

// chipBackend is the sim with outputs whose chip can be lost: while lost,
// Set and OpenOutput fail; an output opened before the loss stays dead
// after the chip is back, as a real line handle does, and only a reopen
// drives the line again.
type chipBackend struct {
	*sim.Backend
	mu    sync.Mutex
	lost  map[string]bool
	gen   map[string]int
	opens map[string]int
	real  map[string]devices.Output
	// glitch: Set fails this many more times with an I/O error, the chip
	// still there.
	glitch map[string]int
}

func newChipBackend(clk clock.Clock) *chipBackend {
	return &chipBackend{Backend: sim.New(clk), lost: map[string]bool{}, gen: map[string]int{}, opens: map[string]int{},
		real: map[string]devices.Output{}, glitch: map[string]int{}}
}

func (b *chipBackend) OpenOutput(spec devices.OutputSpec) (devices.Output, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lost[spec.ID] {
		return nil, fmt.Errorf("chip: output %s: %w", spec.ID, devices.ErrLineLost)
	}
	o := b.real[spec.ID]
	if o == nil {
		var err error
		if o, err = b.Backend.OpenOutput(spec); err != nil {
			return nil, err
		}
		b.real[spec.ID] = o
	}
	b.opens[spec.ID]++
	return &chipOutput{Output: o, b: b, id: spec.ID, gen: b.gen[spec.ID]}, nil
}

// lose removes the chip of output id; back returns it.
func (b *chipBackend) lose(id string) {
	b.mu.Lock()
	b.lost[id] = true
	b.gen[id]++
	b.mu.Unlock()
}

func (b *chipBackend) back(id string) {
	b.mu.Lock()
	b.lost[id] = false
	b.mu.Unlock()
}

func (b *chipBackend) openCount(id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.opens[id]
}

type chipOutput struct {
	devices.Output
	b   *chipBackend
	id  string
	gen int
}

func (o *chipOutput) Set(l devices.Level) error {
	o.b.mu.Lock()
	dead := o.b.lost[o.id] || o.gen != o.b.gen[o.id]
	glitch := !dead && o.b.glitch[o.id] > 0
	if glitch {
		o.b.glitch[o.id]--
	}
	o.b.mu.Unlock()
	if glitch {
		return fmt.Errorf("chip: set %s: input/output error", o.id)
	}
	if dead {
		return fmt.Errorf("chip: set %s: %w", o.id, devices.ErrLineLost)
	}
	return o.Output.Set(l)
}

func (o *chipOutput) Close() error {
	o.b.mu.Lock()
	dead := o.b.lost[o.id] || o.gen != o.b.gen[o.id]
	o.b.mu.Unlock()
	if dead {
		return fmt.Errorf("chip: close %s: %w", o.id, devices.ErrLineLost)
	}
	return o.Output.Close()
}

// startChip runs the test hall on a chipBackend.
func startChip(t *testing.T) (*running, *chipBackend) {
	t.Helper()
	var b *chipBackend
	r := startHall(t, withBackend(func(_ *config.Config, clk clock.Clock) (devices.Backend, error) {
		b = newChipBackend(clk)
		return b, nil
	}))
	return r, b
}

func measuresOf(inc engine.Incident) string {
	var b strings.Builder
	for _, m := range inc.Measures {
		b.WriteString(m.Kind + ": " + m.Text + "\n")
	}
	return b.String()
}

// TestFailedOutputIsTroubleNotAFalseReport: the police link's chip is
// gone when a robbery is raised. The report must not stand on "police-link
// on" alone (§3.2): a measure says it failed, trouble output_failed
// reaches the center, the metric shows it is not driven; the output is
// retried and reopened, and once the chip is back it is driven, the
// measure says so, and the trouble clears.
func TestFailedOutputIsTroubleNotAFalseReport(t *testing.T) {
	r, chip := startChip(t)
	conds := r.conditions()
	seen := func(what string, ok func(string) bool) {
		t.Helper()
		conds.wait(what, ok, 10*time.Second)
	}

	chip.lose("police-link")
	r.pressUntil("panic-1", func() bool { _, ok := r.robbery(); return ok })
	r.eventually("a measure saying the police link failed", func() bool {
		inc, _ := r.robbery()
		return strings.Contains(measuresOf(inc), "police-link failed")
	})
	seen("output_failed raised", func(p string) bool {
		return strings.Contains(p, `"kind":"output_failed"`) && strings.Contains(p, `"output":"police-link"`)
	})
	m := r.metrics()
	if !strings.Contains(m, `hallguard_output_active{output="police-link"} 0`) {
		t.Errorf("hallguard_output_active says the failed police link is driven")
	}
	if !strings.Contains(m, `hallguard_output_failed{output="police-link"} 1`) {
		t.Errorf("no hallguard_output_failed{output=\"police-link\"} 1")
	}

	opens := chip.openCount("police-link")
	chip.back("police-link")
	r.eventually("police link driven after the chip came back", func() bool {
		return r.sim.Output("police-link").Level() == devices.High
	})
	if chip.openCount("police-link") <= opens {
		t.Errorf("the output was not reopened after the chip loss")
	}
	r.eventually("metrics show the police link on", func() bool {
		m := r.metrics()
		return strings.Contains(m, `hallguard_output_active{output="police-link"} 1`) &&
			strings.Contains(m, `hallguard_output_failed{output="police-link"} 0`)
	})
	seen("output_failed cleared", func(p string) bool { return !strings.Contains(p, `"kind":"output_failed"`) })
	r.eventually("a measure saying the police link is on again", func() bool {
		inc, _ := r.robbery()
		return strings.Contains(measuresOf(inc), "police-link on again")
	})
	// Silent: nothing audible tried while the link failed.
	for _, l := range r.sim.Output("siren").History() {
		if l == devices.High {
			t.Fatalf("siren acted during a robbery")
		}
	}
}

// TestOutputGlitchRetriedOnTheSameLine: a drive that fails once with an I/O
// error, the chip still there, is tried again on the same line handle
// (a reopen would drive the line to its fail-safe level for a moment): the
// failure and the recovery are both in the report, and the line was not
// reopened.
func TestOutputGlitchRetriedOnTheSameLine(t *testing.T) {
	r, chip := startChip(t)
	chip.mu.Lock()
	chip.glitch["police-link"] = 1
	chip.mu.Unlock()
	opens := chip.openCount("police-link")
	r.pressUntil("panic-1", func() bool { _, ok := r.robbery(); return ok })
	r.eventually("police link driven after the glitch", func() bool {
		return r.sim.Output("police-link").Level() == devices.High
	})
	r.eventually("the failure and the recovery in the report", func() bool {
		inc, _ := r.robbery()
		m := measuresOf(inc)
		return strings.Contains(m, "police-link failed") && strings.Contains(m, "police-link on again")
	})
	if n := chip.openCount("police-link"); n != opens {
		t.Errorf("the line was reopened %d times for a single I/O error", n-opens)
	}
}
