// Package engine turns conditioned input signals and staff or center
// commands into incidents that follow the emergency plan's playbooks.
//
// It holds the detectors (panic §4.3, smoke verification and call points
// §4.4, the queue model and surge §4.1), the incident state machines
// (active → acknowledged → resolved), playbook steps, escalation along the
// §2 roles, and the rules for outputs (robbery is silent, drills never touch
// live_only outputs). It does no I/O: every effect goes to its Sinks, every timer
// to an injected clock.Clock, so tests drive it completely. Its memory is
// bounded: resolved incidents leave it once reviewed, past
// incidents.retention or beyond incidents.max_resolved (memory.go); the
// journal keeps them.
//
// Concurrency: every exported method takes the engine's lock and runs to
// completion in the caller's goroutine; timers do the same. Sink methods are
// called with the lock held and must only hand their argument off.
package engine
