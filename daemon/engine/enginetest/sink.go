// Package enginetest provides a recording engine.Sink for tests.
package enginetest

import (
	"sync"

	"github.com/hallguard/hallguard/daemon/engine"
)

// Drive is one recorded output change.
type Drive struct {
	Output string
	Active bool
	Reason string
}

// Sink records every effect. Its fields are safe to read after Lock, or
// through the accessor methods.
type Sink struct {
	sync.Mutex
	Reports    []engine.Report
	Drives     []Drive
	Inputs     []engine.InputState
	Queues     []engine.QueueState
	Conditions []engine.Condition
	DrillRecs  []engine.DrillRecord
	Walks      []engine.WalkRecord
	Reviews    []engine.Review
}

// Sinks gives the engine s as its Sink and as every optional sink it
// records (drill, walk test, review); CCTV requests it does not take.
func (s *Sink) Sinks() engine.Sinks {
	return engine.Sinks{Sink: s, Drill: s, Walk: s, Review: s}
}

// Review records a review.
func (s *Sink) Review(r engine.Review) { s.Lock(); s.Reviews = append(s.Reviews, r); s.Unlock() }

// WalkTest records a walk-test record.
func (s *Sink) WalkTest(r engine.WalkRecord) { s.Lock(); s.Walks = append(s.Walks, r); s.Unlock() }

// Drill records a drill record.
func (s *Sink) Drill(r engine.DrillRecord) {
	s.Lock()
	s.DrillRecs = append(s.DrillRecs, r)
	s.Unlock()
}

// Drills returns the recorded drill records.
func (s *Sink) Drills() []engine.DrillRecord {
	s.Lock()
	defer s.Unlock()
	return append([]engine.DrillRecord(nil), s.DrillRecs...)
}

func (s *Sink) Report(r engine.Report) { s.Lock(); s.Reports = append(s.Reports, r); s.Unlock() }
func (s *Sink) Drive(o string, a bool, why string) {
	s.Lock()
	s.Drives = append(s.Drives, Drive{o, a, why})
	s.Unlock()
}
func (s *Sink) Input(st engine.InputState) { s.Lock(); s.Inputs = append(s.Inputs, st); s.Unlock() }
func (s *Sink) Queue(q engine.QueueState)  { s.Lock(); s.Queues = append(s.Queues, q); s.Unlock() }
func (s *Sink) Condition(c engine.Condition) {
	s.Lock()
	s.Conditions = append(s.Conditions, c)
	s.Unlock()
}

// ReportsOf returns the reports of one playbook.
func (s *Sink) ReportsOf(playbook string) []engine.Report {
	s.Lock()
	defer s.Unlock()
	var out []engine.Report
	for _, r := range s.Reports {
		if r.Playbook == playbook {
			out = append(out, r)
		}
	}
	return out
}

// ConditionsOf returns the conditions of one kind.
func (s *Sink) ConditionsOf(kind string) []engine.Condition {
	s.Lock()
	defer s.Unlock()
	var out []engine.Condition
	for _, c := range s.Conditions {
		if c.Kind == kind {
			out = append(out, c)
		}
	}
	return out
}

// Level returns the last driven state of an output (false if never driven).
func (s *Sink) Level(output string) bool {
	s.Lock()
	defer s.Unlock()
	on := false
	for _, d := range s.Drives {
		if d.Output == output {
			on = d.Active
		}
	}
	return on
}

// DrivesOf returns the recorded changes of one output.
func (s *Sink) DrivesOf(output string) []Drive {
	s.Lock()
	defer s.Unlock()
	var out []Drive
	for _, d := range s.Drives {
		if d.Output == output {
			out = append(out, d)
		}
	}
	return out
}
