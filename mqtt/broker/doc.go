// Package broker runs the embedded MQTT broker (mochi-mqtt) that the default
// run and the tests use: one TCP listener on a loopback address. The daemon
// starts it WithAuth: clients authenticate against a password file
// (LoadPasswordFile, EnsurePasswordFile), only the daemon writes the hall's
// report, status and state topics and uses its client id, others write only
// cmd/ (auth.go). Without WithAuth every client is allowed (tests only).
//
// What it must not do: listen on anything but loopback (there is no TLS, so
// a non-loopback address is refused), let anyone but the daemon overwrite a
// retained report or take over the daemon's session, or log chattily
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
