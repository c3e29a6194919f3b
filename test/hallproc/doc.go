// Package hallproc runs hallguard as a child process and looks at it from
// outside, for the three harnesses that do so: the whole-binary tests
// (test/), the benchmark harness (test/bench) and the tests inside the
// vmtest VM (devices/gpiocdev/vmtest). It holds free loopback ports, a log
// buffer, start and stop by PID, /healthz, /metrics samples and histograms,
// and an inbox of MQTT messages.
//
// It is test code in a plain package so that all three can import it: the
// daemon and every package it links must never import it
// (layers_test.go). It holds no globals and never stops a process by name.
package hallproc
