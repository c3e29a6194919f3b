// Package mqtt sends a hall's incidents and state to the monitoring center
// over MQTT 3.1.1 (paho), and lets a person watch what is sent (Watch).
//
// Topics, under <prefix>/<hall-id>/ (see Topics):
//
//	status                  retained "online" (birth, every connection) / "offline" (will; clean Close)
//	inputs/<input-id>       retained InputPayload, latest only; never for a silent input
//	                        (Options.SilentInputs, kind panic): cleared on each connection (§4.3)
//	queue                   retained QueuePayload, latest only
//	incidents/<incident-id> retained ReportPayload, the incident's latest report
//	alerts/<playbook>       every ReportPayload, QoS 1, not retained
//	drills/alerts/<playbook> the same for drills, so dispatch never sees a drill as real
//	conditions              retained array of the active ConditionPayload
//	events/condition        every condition change, not retained
//	journal/head            retained journal head message (Publisher.JournalHead), issue #12 §5
//	cmd/<verb>              commands in (Subscribe)
//	drills/<id>, reviews/<incident>, cctv.topic
//	                        side records (Publisher.Record): drill and walk-test
//	                        records, reviews, CCTV requests; QoS 1, not retained,
//	                        queued and retired on PUBACK like reports
//
// A Publisher implements the engine's Report, Input, Queue and Condition
// sink methods. What it must not do:
//   - block the engine: those methods only hand off (a queue push, a map
//     write) and wake a goroutine; all network work happens elsewhere;
//   - drop a report: a report stays in the Queue until both its publishes
//     got their PUBACK; after any failure the next connection sends again
//     from the oldest one left, in order, with the same ids. Receivers may
//     see duplicates (same "id"), never a gap or, for the first copy of each
//     report, a reorder. The in-memory Queue loses what it holds when the
//     process ends; a durable one can replace it.
//   - publish anything a hall screen could show of a silent incident: the
//     state of silent inputs is dropped, never published;
//   - trust paho to resend: paho's auto-reconnect is off (see clientOptions
//     in conn.go for the paho behaviour that makes it unsafe here).
//
// Network timeouts are real time, like paho's; sent_at, the acknowledgement
// times and the reconnect back-off use the injected clock.
package mqtt
