// Package test holds end-to-end tests that build and start the real
// hallguard binary and talk to it as its users do: through `hallguard sim`,
// a real MQTT client over TCP, and the metrics endpoint.
package test
