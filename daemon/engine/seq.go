package engine

// WithFirstSeq continues the report sequence after n, the highest seq this
// hall has used (the daemon reads it from its journal), so that seq stays
// daemon-wide and increasing across restarts.
func WithFirstSeq(n uint64) Option { return func(e *Engine) { e.seq = n } }
