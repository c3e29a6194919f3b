// Package daemon wires hallguard together and runs it: devices →
// conditioning → engine → MQTT, with metrics and health on HTTP.
//
// It owns the lifecycle (start order, fail-safe outputs at start and stop,
// shutdown that flushes reports) and nothing else: detection and playbooks
// are in engine, lines in devices, transport in mqtt. Run is the only entry.
package daemon
