// Package broker runs the embedded MQTT broker (mochi-mqtt) that the default
// run and the tests use: one TCP listener on a loopback address, every client
// allowed.
//
// What it must not do: listen on anything but loopback (there is no
// authentication, so a non-loopback address is refused), or log chattily
// (mochi's own info lines are kept below the logger's level unless the logger
// asks for debug).
//
// Close is graceful: it first stops accepting PUBLISH packets (they are
// left unacknowledged, so a publisher keeps them and sends them again after a
// restart), waits a bounded time until every message already acknowledged to
// its publisher has been acknowledged by its QoS 1 subscribers, and only then
// closes the connections. mochi acknowledges a PUBLISH before it forwards it
// (server.go:952 writes the PUBACK, :965 then publishes to subscribers), so
// a plain mochi Close can drop messages a publisher has already retired.
package broker
