package config

import (
	"fmt"
	"slices"
)

// supervisedKinds are the alarm inputs whose wiring must be supervised:
// hold-up buttons (§4.3), manual call points and smoke detectors (§4.4).
// A missed alarm on them is the worst failure the hall can have.
var supervisedKinds = []string{KindPanic, KindCallpoint, KindSmoke}

// warn adds to v (a validator of warnings) the warnings of a config that
// is valid: things an installer may do on purpose, but that leave a fault
// unseen.
func (c *Config) warn(v *validator) {
	for i, in := range c.Inputs {
		if !slices.Contains(supervisedKinds, in.Kind) {
			continue
		}
		f := fmt.Sprintf("inputs[%d]", i)
		switch {
		case in.Contact == ContactNO:
			// An NO contact is open at rest: a cut wire looks exactly like
			// rest, so the input is dead until the next walk test. An NC
			// loop opens on a cut, which is an activation (a doubtful signal
			// on an alarm input counts as an alarm) and, after stuck_after,
			// loop_open tamper.
			v.add(f+".contact", "%s input wired NO is not supervised: a cut wire looks like rest and the input is dead unnoticed; "+
				"wire it NC with stuck_after (a cut then raises the alarm and loop_open tamper)", in.Kind)
		case in.StuckAfter.D() <= 0:
			v.add(f+".stuck_after", "NC %s input without stuck_after: a cut wire raises the alarm but never loop_open tamper, "+
				"so the center cannot tell a cut from a press", in.Kind)
		}
	}
}
