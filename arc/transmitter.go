package arc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/devices/clock"
)

// PathState is the supervision state of the path to one receiver.
type PathState int

// Path states.
const (
	PathOK       PathState = iota // the last exchange was ACKed
	PathDegraded                  // an exchange failed; not yet failed
	PathFailed                    // no ACK for FailAfter: trouble is raised
)

func (s PathState) String() string {
	return [...]string{"ok", "degraded", "failed"}[s]
}

// Path is one receiver, in the order tried: primary first, then backups.
type Path struct {
	Name    string // primary, backup: the metrics' path label
	Network string // tcp or udp
	Addr    string // host:port
	// PollInterval is the NULL supervision poll interval (0: no polls).
	PollInterval time.Duration
	// FailAfter: the path has failed when nothing was ACKed this long.
	// Keep it, plus one poll interval and one ACK timeout, under the
	// category's reporting time.
	FailAfter time.Duration
	// TestInterval is the periodic test report (602) interval (0: none).
	TestInterval time.Duration
	// PollIntervalAlone and FailAfterAlone replace PollInterval and
	// FailAfter while every path before this one has failed: in a dual-path
	// category the secondary then takes the primary's times (EN 50136-1).
	// 0 keeps the usual ones.
	PollIntervalAlone, FailAfterAlone time.Duration
}

// Options configure a Transmitter.
type Options struct {
	Account  string // the hall's account at the ARC (hex digits)
	Receiver string // receiver number prefix R (hex digits), or ""
	Line     string // line prefix L (hex digits), or ""
	// Key is the AES-128/192/256 key; nil sends clear messages.
	Key   []byte
	Paths []Path
	// AckTimeout is how long to wait for an answer (default 10s).
	AckTimeout time.Duration
	// Retries on a path that is ok, after silence, an error or a NAK,
	// before trying the next path (default 0: none; the config gives 2).
	// A path that is already degraded gets one try per event.
	Retries int
	// RetryAfter is the wait before trying again when no receiver took
	// an event (default AckTimeout).
	RetryAfter time.Duration
	// AckWindow bounds an encrypted ACK's timestamp against ours (default 1m).
	AckWindow time.Duration
	Clock     clock.Clock
	// Queue is the durable lane; required.
	Queue   Queue
	Mapping *Mapping
	// Registerer takes the metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// OnPathState is told every change of a path's state, from the
	// transmitter's goroutine; it must not block.
	OnPathState func(path string, s PathState, detail string)
	// OnAck is told every event a receiver ACKed; it must not block.
	OnAck func(ev Event, path string, rtt time.Duration)
	// OnQueueTrouble is told when the queue fails to store an event
	// (active true: events go from memory, a crash would lose them) and
	// when it stores again (false); it must not block.
	OnQueueTrouble func(active bool, detail string)
	// OnUndelivered is told when no receiver took an event (true; it stays
	// queued and is tried again) and when events flow again (false); it
	// must not block.
	OnUndelivered func(active bool, detail string)
}

// Transmitter sends events to the ARC over DC-09, in order, one at a time,
// each retired from the Queue on its ACK; it polls and tests every path.
type Transmitter struct {
	o   Options
	clk clock.Clock
	log *slog.Logger
	m   *metrics

	mu    sync.Mutex
	in    []Event // handed off, not yet pushed
	ready []Event // pushed (durable), not yet taken by the sender
	paths []*pathRun
	wake  chan struct{}
	// mark is the highest report seq handed off (its event in in, or
	// none to send); marked is the mark the Queue holds (storing
	// goroutine). marks is the Queue's ReportMarks, if it has them.
	mark, marked uint64
	marks        ReportMarks
	// store wakes the storing goroutine, which pushes handed-off events
	// to the Queue at once, also while the sender waits for an ACK: the
	// journal commits the same reports on its own, and a crash during
	// that wait must not find them in the journal and not in the lane.
	store   chan struct{}
	storing atomic.Bool // the storing goroutine holds events (tests)

	// Owned by the running goroutine.
	pending      []Event
	seqs         SeqStore // the Queue's, if it keeps the sequence
	seq          int
	seqReserved  int           // sequences below this may have been used (SeqStore)
	offset       time.Duration // receiver time minus ours, learnt from NAKs
	blockedUntil time.Time
	queueBad     bool // owned by the storing goroutine
	undelivered  bool

	cancel  context.CancelFunc
	done    chan struct{}
	stored  chan struct{}  // the storing goroutine has returned
	tickers sync.WaitGroup // the periodic test tickers
	waiting atomic.Bool    // the goroutine waits for work (tests)
	closed  bool           // guarded by mu
}

type pathRun struct {
	Path
	conn    net.Conn
	br      *bufio.Reader
	state   PathState // guarded by Transmitter.mu
	lastOK  time.Time // transmitter goroutine only
	pollDue atomic.Bool
	testDue atomic.Bool
	pollT   clock.Timer  // guarded by Transmitter.mu
	polls   atomic.Int64 // supervision exchanges done (tests wait on it)
}

// New checks opts and returns a Transmitter; Start runs it.
func New(opts Options) (*Transmitter, error) {
	if opts.Queue == nil || len(opts.Paths) == 0 || opts.Account == "" {
		return nil, errors.New("arc: a queue, an account and at least one receiver are required")
	}
	if opts.Key != nil {
		switch len(opts.Key) {
		case 16, 24, 32:
		default:
			return nil, fmt.Errorf("arc: key of %d bytes: want 16, 24 or 32 (AES-128/192/256)", len(opts.Key))
		}
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 10 * time.Second
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = opts.AckTimeout
	}
	if opts.AckWindow <= 0 {
		opts.AckWindow = time.Minute
	}
	if opts.Retries < 0 {
		opts.Retries = 0
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Mapping == nil {
		opts.Mapping = &Mapping{}
	}
	t := &Transmitter{o: opts, clk: opts.Clock, log: opts.Logger, wake: make(chan struct{}, 1), done: make(chan struct{}),
		store: make(chan struct{}, 1), stored: make(chan struct{})}
	t.seqs, _ = opts.Queue.(SeqStore)
	t.marks, _ = opts.Queue.(ReportMarks)
	var names []string
	for _, p := range opts.Paths {
		if p.Network != "tcp" && p.Network != "udp" {
			return nil, fmt.Errorf("arc: receiver %s: network %q (want tcp or udp)", p.Name, p.Network)
		}
		t.paths = append(t.paths, &pathRun{Path: p})
		names = append(names, p.Name)
	}
	t.m = newMetrics(opts.Registerer, names)
	return t, nil
}

// Start loads what the queue holds from before (a restart or a crash
// replays it first, in order) and starts sending, polling and testing.
func (t *Transmitter) Start(ctx context.Context) error {
	old, err := t.o.Queue.Pending()
	if err != nil {
		return err
	}
	if len(old) > 0 {
		t.log.Warn("DC-09 events from before the restart are sent first", "events", len(old))
	}
	t.pending = old
	if t.marks != nil {
		if n, _, err := t.marks.ReportMark(); err == nil {
			t.marked = n
		}
	}
	if t.seqs != nil {
		// Go on after every sequence the last run may have used; a
		// reservation that reached the end (10000) starts again at 0001.
		if n, err := t.seqs.ReservedSeq(); err == nil && n > 1 && n < 10000 {
			t.seq, t.seqReserved = n-1, n
		}
	}
	now := t.clk.Now()
	ctx, t.cancel = context.WithCancel(ctx)
	for _, p := range t.paths {
		p.lastOK = now // a path has FailAfter from start to prove itself
		t.armPoll(p)
		if p.TestInterval > 0 {
			// The ticker runs from now, not from when a goroutine runs: a
			// test is due TestInterval after the start.
			loop := clock.Every(t.clk, p.TestInterval, func(time.Time) {
				p.testDue.Store(true)
				t.kick()
			})
			t.tickers.Go(func() { loop(ctx) })
		}
	}
	go t.storeLoop(ctx)
	go t.run(ctx)
	t.kick()
	return nil
}

// alone says whether every path before p has failed (t.mu held).
func (t *Transmitter) alone(p *pathRun) bool {
	for _, q := range t.paths {
		if q == p {
			return true
		}
		if q.state != PathFailed {
			return false
		}
	}
	return true
}

// pollInterval and failAfter are p's supervision times now (t.mu held).
func (t *Transmitter) pollInterval(p *pathRun) time.Duration {
	if p.PollIntervalAlone > 0 && p != t.paths[0] && t.alone(p) {
		return p.PollIntervalAlone
	}
	return p.PollInterval
}

func (t *Transmitter) failAfter(p *pathRun) time.Duration {
	if p.FailAfterAlone > 0 && p != t.paths[0] && t.alone(p) {
		return p.FailAfterAlone
	}
	return p.FailAfter
}

// armPoll (re)schedules p's next NULL poll at its current interval.
func (t *Transmitter) armPoll(p *pathRun) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p.pollT != nil {
		p.pollT.Stop()
		p.pollT = nil
	}
	d := t.pollInterval(p)
	if d <= 0 || t.closed {
		return
	}
	p.pollT = t.clk.AfterFunc(d, func() {
		p.pollDue.Store(true)
		t.kick()
		t.armPoll(p)
	})
}

// idle says whether the goroutine waits with nothing to do (tests).
func (t *Transmitter) idle() bool {
	t.mu.Lock()
	queued := len(t.in) + len(t.ready)
	t.mu.Unlock()
	return queued == 0 && !t.storing.Load() && len(t.store) == 0 && t.waiting.Load() && len(t.wake) == 0
}

// Close stops the transmitter; what is not ACKed stays in the queue.
func (t *Transmitter) Close() {
	if t.cancel != nil {
		t.cancel()
		<-t.done
		<-t.stored
		t.tickers.Wait()
	}
	t.mu.Lock()
	t.closed = true
	for _, p := range t.paths {
		if p.pollT != nil {
			p.pollT.Stop()
		}
	}
	t.mu.Unlock()
}

func (t *Transmitter) kick() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// Report hands an incident report off (engine.Sink style: it never
// blocks); the ones the ARC takes are queued durably and sent.
func (t *Transmitter) Report(r engine.Report) {
	ev, ok := t.o.Mapping.Report(r)
	t.mu.Lock()
	t.mark = max(t.mark, r.Seq)
	if ok {
		t.in = append(t.in, ev)
	}
	t.mu.Unlock()
	t.wakeStore()
}

// Condition hands a condition off, as Report does.
func (t *Transmitter) Condition(c engine.Condition) {
	if ev, ok := t.o.Mapping.Condition(c); ok {
		t.Send(ev)
	}
}

// Send hands an event off to be queued durably and sent.
func (t *Transmitter) Send(ev Event) {
	t.mu.Lock()
	t.in = append(t.in, ev)
	t.mu.Unlock()
	t.wakeStore()
}

// wakeStore wakes the storing goroutine.
func (t *Transmitter) wakeStore() {
	select {
	case t.store <- struct{}{}:
	default:
	}
}

// State returns the state of the named path.
func (t *Transmitter) State(path string) PathState {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.paths {
		if p.Name == path {
			return p.state
		}
	}
	return PathFailed
}

func (t *Transmitter) run(ctx context.Context) {
	defer close(t.done)
	defer t.closeConns()
	for {
		if ctx.Err() != nil {
			return
		}
		t.absorb()
		busy := false
		if len(t.pending) > 0 && !t.clk.Now().Before(t.blockedUntil) {
			t.sendHead()
			busy = true
		} else {
			for _, p := range t.paths {
				if p.testDue.Swap(false) {
					t.supervise(p, CIDPeriodicTest)
					busy = true
				} else if p.pollDue.Swap(false) {
					t.supervise(p, 0)
					busy = true
				}
			}
		}
		t.gauges()
		if busy {
			continue
		}
		t.waiting.Store(true)
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
		}
		t.waiting.Store(false)
	}
}

// storeLoop makes handed-off events durable, in order, as soon as they are
// handed off, and passes them to the sender. On Close it stores what is
// still handed off before it returns.
func (t *Transmitter) storeLoop(ctx context.Context) {
	defer close(t.stored)
	for {
		t.storeIn()
		select {
		case <-ctx.Done():
			t.storeIn()
			return
		case <-t.store:
		}
	}
}

// absorb takes the stored events into the sender's pending list.
func (t *Transmitter) absorb() {
	t.mu.Lock()
	t.pending = append(t.pending, t.ready...)
	t.ready = nil
	t.mu.Unlock()
}

// storeIn pushes the handed-off events to the Queue.
func (t *Transmitter) storeIn() {
	t.storing.Store(true)
	defer t.storing.Store(false)
	t.mu.Lock()
	in, mark := t.in, t.mark
	t.in = nil
	t.mu.Unlock()
	if len(in) == 0 {
		t.storeMark(mark)
		return
	}
	pushed := true
	for _, ev := range in {
		k, err := t.o.Queue.Push(ev)
		if err == nil {
			t.marked = max(t.marked, ev.Report) // Push raised it
		}
		pushed = pushed && err == nil
		if err != nil {
			// Never dropped: it is sent from memory, and trouble says a
			// crash now would lose it.
			t.log.Error("DC-09 event not stored; sending it from memory", "event", ev.ID, "err", err)
		}
		if bad := err != nil; bad != t.queueBad {
			t.queueBad = bad
			if t.o.OnQueueTrouble != nil {
				detail := "stored again"
				if bad {
					detail = err.Error()
				}
				t.o.OnQueueTrouble(bad, detail)
			}
		}
		ev.Key = k
		t.mu.Lock()
		t.ready = append(t.ready, ev)
		t.mu.Unlock()
	}
	if pushed {
		t.storeMark(mark) // an event only in memory keeps the mark below it
	}
	t.kick()
}

// storeMark records in the Queue that every report up to mark has been
// taken: the ones with an event were pushed by storeIn before it, the
// others had none to send. While the Queue fails it stays where it is.
func (t *Transmitter) storeMark(mark uint64) {
	if t.marks == nil || t.queueBad || mark <= t.marked {
		return
	}
	if err := t.marks.MarkReports(mark); err != nil {
		t.log.Warn("DC-09 report mark not stored; a restart hands the lane some reports again", "err", err)
		return
	}
	t.marked = mark
}

// seqBlock is how many sequences are reserved on disk at a time: one
// write per block, not per message.
const seqBlock = 100

func (t *Transmitter) nextSeq() int {
	t.seq++
	if t.seq > 9999 {
		t.seq = 1
	}
	if t.seqs != nil && (t.seq >= t.seqReserved || t.seq == 1) {
		t.seqReserved = min(t.seq+seqBlock, 10000)
		if err := t.seqs.ReserveSeq(t.seqReserved); err != nil {
			t.log.Warn("DC-09 sequence not stored; after a restart it may repeat", "err", err)
		}
	}
	return t.seq
}

func (t *Transmitter) frame(id, data string, seq int) Frame {
	return Frame{ID: id, Seq: seq, Receiver: t.o.Receiver, Line: t.o.Line, Account: t.o.Account, Data: data,
		Time: t.clk.Now().Add(t.offset)}
}

// order is the paths to try: those not failed in their configured order,
// then the failed ones (the event must still go somewhere).
func (t *Transmitter) order() []*pathRun {
	t.mu.Lock()
	defer t.mu.Unlock()
	var up, down []*pathRun
	for _, p := range t.paths {
		if p.state == PathFailed {
			down = append(down, p)
		} else {
			up = append(up, p)
		}
	}
	return append(up, down...)
}

// sendHead sends the oldest pending event until a receiver ACKs it.
func (t *Transmitter) sendHead() {
	ev := t.pending[0]
	seq := t.nextSeq()
	data := ev.Data(t.o.Account)
	// An alarm tries every path once before any retry: a robbery must not
	// wait out the retries of a primary that has just gone silent (§3 2).
	passes := []int{t.o.Retries}
	if ev.Alarm() {
		passes = []int{0, t.o.Retries}
	}
	for _, retries := range passes {
		for _, p := range t.order() {
			if t.deliver(p, ev.Format, data, seq, ev, retries) {
				if ev.Key != 0 {
					if err := t.o.Queue.Retire(ev.Key); err != nil {
						t.log.Error("DC-09 event ACKed but not retired; it will be sent again", "event", ev.ID, "err", err)
					}
				}
				t.pending = t.pending[1:]
				if t.undelivered {
					t.undelivered = false
					if t.o.OnUndelivered != nil {
						t.o.OnUndelivered(false, "delivered to "+p.Name)
					}
				}
				return
			}
		}
	}
	t.blockedUntil = t.clk.Now().Add(t.o.RetryAfter)
	t.clk.AfterFunc(t.o.RetryAfter, t.kick) // one-shot; a kick after Close is harmless
	t.log.Error("no receiver took a DC-09 event; it stays queued", "event", ev.ID, "retry_in_s", t.o.RetryAfter.Seconds())
	if !t.undelivered {
		t.undelivered = true
		if t.o.OnUndelivered != nil {
			t.o.OnUndelivered(true, fmt.Sprintf("no receiver took event %s (%s); it stays queued", ev.ID, ev))
		}
	}
}

// deliver sends one message on p with its retries; true once ACKed.
func (t *Transmitter) deliver(p *pathRun, id, data string, seq int, ev Event, retries int) bool {
	attempts := 1
	t.mu.Lock()
	if p.state == PathOK {
		attempts += retries
	}
	t.mu.Unlock()
	naked := false
	for a := 0; a < attempts; a++ {
		if a > 0 {
			t.m.retries.WithLabelValues(p.Name).Inc()
		}
		reply, rtt, err := t.exchange(p, t.frame(id, data, seq))
		if err != nil {
			t.failed(p, err)
			continue
		}
		switch reply.ID {
		case IDAck:
			t.acked(p, rtt)
			if id != IDNull && ev.ID != "" {
				t.m.acked.WithLabelValues(p.Name).Inc()
				if t.o.OnAck != nil {
					t.o.OnAck(ev, p.Name, rtt)
				}
			}
			return true
		case IDNak:
			t.m.naks.WithLabelValues(p.Name).Inc()
			if !reply.Time.IsZero() {
				t.offset = reply.Time.Sub(t.clk.Now())
				t.log.Warn("DC-09 receiver refused our time; resending with its time", "path", p.Name, "offset_s", t.offset.Seconds())
			}
			if !naked { // one resend with the corrected time is free
				naked = true
				a--
				t.m.retries.WithLabelValues(p.Name).Inc()
			}
		default: // DUH: the receiver is there but will not take it
			t.log.Error("DC-09 receiver did not understand a message", "path", p.Name, "answer", reply.ID, "id", id)
			return false
		}
	}
	return false
}

// supervise polls p with NULL, or sends it a periodic test (code 602).
func (t *Transmitter) supervise(p *pathRun, code int) {
	defer p.polls.Add(1)
	id, data := IDNull, ""
	var ev Event
	if code != 0 {
		ev = Test(code, t.clk.Now())
		id, data = ev.Format, ev.Data(t.o.Account)
	}
	t.deliver(p, id, data, t.nextSeq(), ev, 0)
}

// exchange sends f on p and waits for the answer with f's sequence (or a
// NAK), dialling first if needed. Network errors close the connection.
func (t *Transmitter) exchange(p *pathRun, f Frame) (Frame, time.Duration, error) {
	raw, err := f.Encode(t.o.Key)
	if err != nil {
		return Frame{}, 0, err
	}
	if p.conn == nil {
		c, err := net.DialTimeout(p.Network, p.Addr, t.o.AckTimeout)
		if err != nil {
			return Frame{}, 0, fmt.Errorf("arc: %s: %w", p.Name, err)
		}
		p.conn, p.br = c, bufio.NewReaderSize(c, MaxFrame+2)
	}
	start := time.Now() // round trip on the real clock: a network time
	deadline := start.Add(t.o.AckTimeout)
	_ = p.conn.SetDeadline(deadline)
	if _, err := p.conn.Write(raw); err != nil {
		t.drop(p)
		return Frame{}, 0, fmt.Errorf("arc: %s: send: %w", p.Name, err)
	}
	for {
		var ans []byte
		if p.Network == "udp" {
			buf := make([]byte, MaxFrame+2)
			n, err := p.conn.Read(buf)
			if err != nil {
				t.drop(p)
				return Frame{}, 0, fmt.Errorf("arc: %s: no answer: %w", p.Name, err)
			}
			ans = buf[:n]
		} else {
			ans, err = readFrame(p.br)
			if err != nil {
				t.drop(p)
				return Frame{}, 0, fmt.Errorf("arc: %s: no answer: %w", p.Name, err)
			}
		}
		rtt := time.Since(start)
		r, err := Decode(ans, t.o.Key)
		if err != nil {
			t.log.Warn("DC-09 answer refused", "path", p.Name, "err", err)
			continue // not the answer: keep waiting until the deadline
		}
		switch {
		case r.ID == IDNak:
			return r, rtt, nil
		case r.Seq != f.Seq || (r.Account != "" && r.Account != t.o.Account):
			continue // a late answer to an earlier message, or not ours
		case r.ID == IDAck && t.o.Key != nil:
			// An encrypted message wants an encrypted ACK with a time
			// close to ours: a replayed or forged ACK is not taken.
			now := t.clk.Now().Add(t.offset)
			if !r.Encrypted || r.Time.IsZero() || r.Time.Before(now.Add(-t.o.AckWindow)) || r.Time.After(now.Add(t.o.AckWindow)) {
				t.log.Warn("DC-09 ACK refused: not encrypted or out of time", "path", p.Name, "time", r.Time)
				continue
			}
		}
		return r, rtt, nil
	}
}

func (t *Transmitter) drop(p *pathRun) {
	if p.conn != nil {
		p.conn.Close()
		p.conn, p.br = nil, nil
	}
}

func (t *Transmitter) closeConns() {
	for _, p := range t.paths {
		t.drop(p)
	}
}

func (t *Transmitter) acked(p *pathRun, rtt time.Duration) {
	now := t.clk.Now()
	p.lastOK = now
	t.m.rtt.WithLabelValues(p.Name).Observe(rtt.Seconds())
	t.m.lastAck.WithLabelValues(p.Name).Set(float64(now.UnixNano()) / 1e9)
	t.setState(p, PathOK, "ACK")
}

func (t *Transmitter) failed(p *pathRun, err error) {
	st := PathDegraded
	t.mu.Lock()
	fail := t.failAfter(p)
	t.mu.Unlock()
	if t.clk.Now().Sub(p.lastOK) >= fail {
		st = PathFailed
	}
	t.setState(p, st, err.Error())
}

func (t *Transmitter) setState(p *pathRun, st PathState, detail string) {
	t.mu.Lock()
	old := p.state
	p.state = st
	t.mu.Unlock()
	if old == st {
		return
	}
	if old == PathFailed || st == PathFailed {
		// The paths after p may now be alone, or no longer: their
		// supervision times change, and a path newly alone is polled now.
		after := false
		for _, q := range t.paths {
			if q == p {
				after = true
				continue
			}
			if after && q.PollIntervalAlone > 0 {
				if st == PathFailed {
					q.pollDue.Store(true)
				}
				t.armPoll(q)
			}
		}
		t.kick()
	}
	t.m.state.WithLabelValues(p.Name).Set(float64(st))
	t.m.up.WithLabelValues(p.Name).Set(b2f(st != PathFailed))
	switch st {
	case PathFailed:
		t.log.Error("DC-09 path failed", "path", p.Name, "since_ack_s", t.clk.Now().Sub(p.lastOK).Seconds(), "detail", detail)
	case PathDegraded:
		t.log.Warn("DC-09 path degraded", "path", p.Name, "detail", detail)
	default:
		t.log.Info("DC-09 path ok", "path", p.Name)
	}
	if t.o.OnPathState != nil {
		t.o.OnPathState(p.Name, st, detail)
	}
}

// gauges counts the pending events on the path first in line for them.
func (t *Transmitter) gauges() {
	t.mu.Lock()
	n := len(t.pending) + len(t.in) + len(t.ready)
	t.mu.Unlock()
	for i, p := range t.order() {
		v := 0
		if i == 0 {
			v = n
		}
		t.m.pending.WithLabelValues(p.Name).Set(float64(v))
	}
}

// Probe sends one manual test (601) on the named path and returns the
// answer and the round trip: `hallguard arc test`. Use it on a
// Transmitter that is not started.
func (t *Transmitter) Probe(path string) (Frame, time.Duration, error) {
	for _, p := range t.paths {
		if p.Name != path {
			continue
		}
		ev := Test(CIDManualTest, t.clk.Now())
		defer t.drop(p)
		f, rtt, err := t.exchange(p, t.frame(ev.Format, ev.Data(t.o.Account), t.nextSeq()))
		if err == nil && f.ID == IDNak && !f.Time.IsZero() { // resend once with the receiver's time
			t.offset = f.Time.Sub(t.clk.Now())
			f, rtt, err = t.exchange(p, t.frame(ev.Format, ev.Data(t.o.Account), t.nextSeq()))
		}
		return f, rtt, err
	}
	return Frame{}, 0, fmt.Errorf("arc: no receiver %q", path)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
