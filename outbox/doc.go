// Package outbox is the contract between what makes reports and what
// delivers them: the Message (a report or a side record), the Queue that
// holds it until its path acknowledges it, and MemQueue, the in-memory
// Queue. The journal implements Queue durably; the MQTT publisher drains
// it.
//
// It must not import a transport (no paho, no network) nor the journal:
// both sides import it, never the reverse.
package outbox
