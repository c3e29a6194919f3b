package mqtt

import "github.com/hallguard/hallguard/outbox"

// The outbox's contract, as the publisher names it: aliases of package
// outbox's types, not copies (the journal implements outbox.Queue without
// importing this package).
type (
	Message    = outbox.Message
	SideRecord = outbox.SideRecord
	Queue      = outbox.Queue
	MemQueue   = outbox.MemQueue
	Notifier   = outbox.Notifier
)
