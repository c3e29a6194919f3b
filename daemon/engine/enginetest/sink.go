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

// add appends x to *list under s's lock.
func add[T any](s *Sink, list *[]T, x T) {
	s.Lock()
	*list = append(*list, x)
	s.Unlock()
}

// of returns a copy of the items of *list that keep selects, read under
// s's lock.
func of[T any](s *Sink, list *[]T, keep func(T) bool) []T {
	s.Lock()
	defer s.Unlock()
	var out []T
	for _, x := range *list {
		if keep(x) {
			out = append(out, x)
		}
	}
	return out
}

// Review records a review.
func (s *Sink) Review(r engine.Review) { add(s, &s.Reviews, r) }

// WalkTest records a walk-test record.
func (s *Sink) WalkTest(r engine.WalkRecord) { add(s, &s.Walks, r) }

// Drill records a drill record.
func (s *Sink) Drill(r engine.DrillRecord) { add(s, &s.DrillRecs, r) }

// Drills returns the recorded drill records.
func (s *Sink) Drills() []engine.DrillRecord {
	return of(s, &s.DrillRecs, func(engine.DrillRecord) bool { return true })
}

func (s *Sink) Report(r engine.Report)             { add(s, &s.Reports, r) }
func (s *Sink) Drive(o string, a bool, why string) { add(s, &s.Drives, Drive{o, a, why}) }
func (s *Sink) Input(st engine.InputState)         { add(s, &s.Inputs, st) }
func (s *Sink) Queue(q engine.QueueState)          { add(s, &s.Queues, q) }
func (s *Sink) Condition(c engine.Condition)       { add(s, &s.Conditions, c) }

// ReportsOf returns the reports of one playbook.
func (s *Sink) ReportsOf(playbook string) []engine.Report {
	return of(s, &s.Reports, func(r engine.Report) bool { return r.Playbook == playbook })
}

// ConditionsOf returns the conditions of one kind.
func (s *Sink) ConditionsOf(kind string) []engine.Condition {
	return of(s, &s.Conditions, func(c engine.Condition) bool { return c.Kind == kind })
}

// Level returns the last driven state of an output (false if never driven).
func (s *Sink) Level(output string) bool {
	ds := s.DrivesOf(output)
	return len(ds) > 0 && ds[len(ds)-1].Active
}

// DrivesOf returns the recorded changes of one output.
func (s *Sink) DrivesOf(output string) []Drive {
	return of(s, &s.Drives, func(d Drive) bool { return d.Output == output })
}
