package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
)

// §4.4 alarm verification as fire panels do it (reset, retard,
// confirmation): a detector that resets itself and re-alarms within
// smoke.confirm_window confirms fire, in every verification mode. A
// detector in alarm 20 s and off 2 s, over and over, is a fire.
func TestSmokeReAlarmWithinConfirmWindowConfirmsFire(t *testing.T) {
	for _, mode := range []string{config.VerifyPersist, config.VerifyRetrigger, config.VerifyNone} {
		t.Run(mode, func(t *testing.T) {
			h := newHall(t, "")
			h.cfg.Smoke.Verify = mode
			start := h.clk.Now()
			h.press("smoke-1")
			h.clk.Advance(20 * time.Second)
			h.release("smoke-1")
			h.clk.Advance(2 * time.Second)
			if mode != config.VerifyNone {
				if n := len(h.sink.ReportsOf("fire")); n != 0 {
					t.Fatalf("fire before the re-alarm: %d reports", n)
				}
			}
			h.press("smoke-1") // re-alarm 2 s after the reset
			reps := h.sink.ReportsOf("fire")
			if len(reps) != 1 {
				t.Fatalf("fire reports after a re-alarm within confirm_window: %d, want 1", len(reps))
			}
			if !reps[0].OccurredAt.Equal(start) {
				t.Errorf("fire occurred at %v, want the first alarm %v", reps[0].OccurredAt, start)
			}
			if mode != config.VerifyNone && !strings.Contains(reps[0].Other, "re-alarmed") {
				t.Errorf("other %q does not say the detector re-alarmed", reps[0].Other)
			}
		})
	}
}

// A re-alarm after confirm_window has passed starts a new verification: it
// is not a confirmation.
func TestSmokeReAlarmAfterConfirmWindowIsANewPreAlarm(t *testing.T) {
	h := newHall(t, "")
	h.press("smoke-1")
	h.clk.Advance(10 * time.Second)
	h.release("smoke-1")
	h.clk.Advance(h.cfg.Smoke.ConfirmWindow.D() + time.Second)
	h.press("smoke-1")
	if n := len(h.sink.ReportsOf("fire")); n != 0 {
		t.Fatalf("fire from a re-alarm outside confirm_window: %d reports", n)
	}
	h.clk.Advance(h.cfg.Smoke.VerifyWindow.D())
	if n := len(h.sink.ReportsOf("fire")); n != 1 {
		t.Fatalf("a detector active for verify_window: %d fire reports, want 1", n)
	}
}
