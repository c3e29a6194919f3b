package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/outbox"
)

// Errors callers branch on.
var (
	// ErrClosed: the publisher is closed.
	ErrClosed = errors.New("mqtt: publisher closed")
	// ErrUndelivered: Close ended with reports not acknowledged by the broker.
	ErrUndelivered = errors.New("mqtt: reports not delivered")
	// ErrConfig: New was given a configuration it cannot use.
	ErrConfig = errors.New("mqtt: invalid configuration")
)

const (
	defaultPrefix      = config.DefaultTopicPrefix
	defaultMaxInflight = 16
	statusOnline       = "online"
	statusOffline      = "offline"
)

// Options are the publisher's collaborators and hooks. Every field is
// optional. The hooks are called from the publisher's own goroutines, never
// from Report/Input/Queue/Condition; they must return quickly.
type Options struct {
	Logger *slog.Logger
	// Clock stamps sent_at and the acknowledgement times, and paces the
	// reconnect back-off. Network timeouts (connect, write, PUBACK) are real
	// time, as paho's own are.
	Clock clock.Clock
	// Password for cfg.Username (the daemon reads cfg.PasswordFile).
	Password string
	// OnAck is called once per report, when its publishes got their PUBACK
	// and it left the queue; ackedAt is from Clock.
	OnAck func(r engine.Report, ackedAt time.Time)
	// OnRecordAck is called once per side record (Record), when its
	// PUBACK arrived and it left the queue.
	OnRecordAck func(m outbox.Message, ackedAt time.Time)
	// OnFail is called for every failed delivery attempt of a report (lost
	// connection, error, PUBACK timeout). The report stays queued and is
	// sent again.
	OnFail func(r engine.Report, err error)
	// OnConnect is called with true after each connection (birth sent) and
	// with false when it ends.
	OnConnect func(connected bool)
	// MaxInflight bounds the reports published and not yet acknowledged
	// (default 16).
	MaxInflight int
	// Discovery, when set, announces the hall to Home Assistant.
	Discovery *Discovery
	// SilentInputs are the inputs whose state is never published (panic
	// buttons, generic inputs raising a silent playbook): §4.3, nothing in
	// the hall may show a robbery, and a retained inputs/<id> is readable
	// by any screen. Their topics are cleared (an empty retained message)
	// on every connection, the same whatever their state, so that a value
	// an older version left there goes. Inputs of kind panic are silent
	// even when not listed.
	SilentInputs []string
	// JournalHead, when set, gives the journal's chain head (last record's
	// seq and hash); every report carries it as sent (ReportPayload.journal).
	JournalHead func() (seq uint64, hash string)
	// Queue holds the reports until acknowledged (default outbox.NewMemQueue()).
	Queue outbox.Queue
}

// Counters are counts of things the publisher had to give up on, for the
// daemon's metrics. Reports are never among them.
type Counters struct {
	// DroppedEvents: condition changes not sent on events/condition because
	// more than 1024 piled up while disconnected (the retained conditions
	// array stays exact).
	DroppedEvents uint64
	// DroppedCommands: refused messages (junk on cmd/) dropped unanswered
	// because more than refusedBacklog refusals waited. An admitted
	// command is never dropped.
	DroppedCommands uint64
}

// sink is the part of engine.Sink the publisher implements (Drive is the
// outputs' job).
type sink interface {
	Report(engine.Report)
	Input(engine.InputState)
	Queue(engine.QueueState)
	Condition(engine.Condition)
}

var _ sink = (*Publisher)(nil)

// Publisher sends the engine's reports and state to the monitoring center.
// Report, Input, Queue and Condition never block and may be called at any
// time, before Start and while disconnected.
type Publisher struct {
	net       netSettings
	topics    Topics
	discovery *Discovery
	log       *slog.Logger
	clk       clock.Clock
	onAck     func(engine.Report, time.Time)
	onRecAck  func(outbox.Message, time.Time)
	onFail    func(engine.Report, error)
	onConn    func(bool)
	window    int
	queue     outbox.Queue
	state     *stateStore
	silent    map[string]bool // input ids never published (SilentInputs)
	head      func() (uint64, string)

	wakeSend  chan struct{} // a report was queued
	wakeState chan struct{} // state changed
	acked     chan struct{} // a report was acknowledged (Close's flush waits on it)
	refused   chan refusal  // refused messages for Intake.Refuse
	admMu     sync.Mutex
	adm       []admitted    // admitted messages for Intake.Handle
	admWake   chan struct{} // something was admitted

	mu          sync.Mutex
	sess        *session      // the live connection, nil between connections
	sessChanged chan struct{} // closed and replaced whenever sess changes
	subs        map[string]Intake
	started     bool
	closed      atomic.Bool

	stopWork  chan struct{} // stops the sender, state and command goroutines
	stopConn  chan struct{} // then stops the connection supervisor
	workers   sync.WaitGroup
	superDone chan struct{}
	closeCtx  context.Context // set before stopConn is closed
	closeOnce sync.Once
	closeErr  error

	droppedCommands atomic.Uint64
}

// New checks cfg and returns a publisher for hall; nothing connects until
// Start. cfg.Broker is a URL (tcp://, mqtt://, ssl://, tls://, mqtts://; the
// daemon passes tcp://<listen> for the embedded broker). TLS files in cfg.TLS
// that fail to load are an error. cfg must have the defaults of a loaded
// config (config.Load): a zero duration or client id is an error.
func New(cfg config.MQTT, hall config.Hall, opts Options) (*Publisher, error) {
	ns, err := newNetSettings(cfg, opts.Password)
	if err != nil {
		return nil, err
	}
	p := &Publisher{
		net:         ns,
		topics:      NewTopics(cfg.TopicPrefix, hall.ID),
		discovery:   opts.Discovery,
		log:         opts.Logger,
		clk:         opts.Clock,
		onAck:       opts.OnAck,
		onRecAck:    opts.OnRecordAck,
		onFail:      opts.OnFail,
		onConn:      opts.OnConnect,
		window:      opts.MaxInflight,
		queue:       opts.Queue,
		wakeSend:    make(chan struct{}, 1),
		wakeState:   make(chan struct{}, 1),
		acked:       make(chan struct{}, 1),
		refused:     make(chan refusal, refusedBacklog),
		admWake:     make(chan struct{}, 1),
		sessChanged: make(chan struct{}),
		subs:        map[string]Intake{},
		stopWork:    make(chan struct{}),
		stopConn:    make(chan struct{}),
		superDone:   make(chan struct{}),
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = p.log.With("component", "mqtt")
	if p.clk == nil {
		p.clk = clock.Real{}
	}
	if p.window <= 0 {
		p.window = defaultMaxInflight
	}
	if p.queue == nil {
		p.queue = outbox.NewMemQueue()
	}
	p.state = newStateStore(p.topics)
	p.head = opts.JournalHead
	p.silent = map[string]bool{}
	for _, id := range opts.SilentInputs {
		p.silent[id] = true
		p.state.set(p.topics.Input(id), clearRetained{})
	}
	return p, nil
}

// Topics returns the publisher's topics.
func (p *Publisher) Topics() Topics { return p.topics }

// Start starts connecting and returns at once: when the broker is down, the
// publisher keeps trying (back-off doubling from 1 s to cfg.MaxReconnect)
// while reports queue up. ctx is only checked; Close stops the publisher.
func (p *Publisher) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mqtt: start: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return ErrClosed
	}
	if p.started {
		return errors.New("mqtt: start: already started")
	}
	p.started = true
	p.workers.Go(p.sendLoop)
	p.workers.Go(p.stateLoop)
	p.workers.Go(p.commandLoop)
	p.workers.Go(p.refuseLoop)
	go p.supervise()
	if n, ok := p.queue.(outbox.Notifier); ok {
		// A durable queue makes reports peekable only once on disk.
		p.workers.Go(func() { forward(n, p.wakeSend, p.stopWork) })
	}
	return nil
}

// Close flushes and stops: it waits until every queued report is
// acknowledged or ctx is done, stops sending, publishes "offline" retained
// on status and disconnects. Reports still queued then are reported as
// ErrUndelivered (and lost with the in-memory queue). Close is idempotent and
// returns the same result every time.
func (p *Publisher) Close(ctx context.Context) error {
	p.closeOnce.Do(func() { p.closeErr = p.close(ctx) })
	return p.closeErr
}

func (p *Publisher) close(ctx context.Context) error {
	p.mu.Lock()
	p.closed.Store(true)
	started := p.started
	p.mu.Unlock()

	if started {
	flush:
		for p.queue.Len() > 0 {
			select {
			case <-p.acked:
			case <-ctx.Done():
				break flush
			}
		}
		close(p.stopWork)
		p.workers.Wait()
		p.closeCtx = ctx
		close(p.stopConn)
		<-p.superDone
	}
	if n := p.queue.Len(); n > 0 {
		p.log.Error("closed with reports not delivered", "pending", n)
		if err := context.Cause(ctx); err != nil {
			return fmt.Errorf("mqtt: close: %d reports not acknowledged: %w (%w)", n, ErrUndelivered, err)
		}
		return fmt.Errorf("mqtt: close: %d reports not acknowledged: %w (never started)", n, ErrUndelivered)
	}
	p.log.Info("closed")
	return nil
}

// Report queues r for delivery and returns at once. r goes to
// alerts/<playbook> (drills/alerts/<playbook> for drills) and, retained, to
// incidents/<incident>, in report order, and stays queued until both
// publishes are acknowledged. After Close it is still queued (a durable
// queue keeps it for the next run) but not sent.
func (p *Publisher) Report(r engine.Report) {
	p.queue.Push(outbox.Message{ID: r.ID, Report: r})
	if p.closed.Load() {
		p.log.Error("report after close: queued, not sent", "report", r.ID)
		return
	}
	signal(p.wakeSend)
}

// Record queues a side record (a drill record, a review, a CCTV bookmark
// request) for delivery, in order with the reports, and returns at once.
// Like a report it stays queued until its PUBACK; with a durable queue it
// is journalled and replayed after a restart.
func (p *Publisher) Record(r outbox.SideRecord) {
	p.queue.Push(outbox.Message{ID: r.ID(), Side: &r})
	if p.closed.Load() {
		p.log.Error("record after close: queued, not sent", "record", r.ID())
		return
	}
	signal(p.wakeSend)
}

// Input records the state of one input; only the latest per input is
// published, retained on inputs/<id>, when connected. The state of a silent
// input (Options.SilentInputs, kind panic) is dropped here: §4.3.
func (p *Publisher) Input(s engine.InputState) {
	if p.silent[s.ID] || s.Kind == config.KindPanic {
		return
	}
	p.state.set(p.topics.Input(s.ID), newInputPayload(s))
	signal(p.wakeState)
}

// Queue records the queue model's state; the latest is published, retained
// on queue, when connected.
func (p *Publisher) Queue(q engine.QueueState) {
	p.state.set(p.topics.Queue(), newQueuePayload(q))
	signal(p.wakeState)
}

// JournalHead records the journal's head message (a journal.HeadMessage);
// the latest is published, retained on journal/head, when connected and
// again on every connection.
func (p *Publisher) JournalHead(v any) {
	p.state.set(p.topics.JournalHead(), v)
	signal(p.wakeState)
}

// Condition records a condition raised or cleared: the retained array on
// conditions holds the active ones; each change also goes to
// events/condition.
func (p *Publisher) Condition(c engine.Condition) {
	p.state.condition(c)
	signal(p.wakeState)
}

// Pending returns how many reports wait for their PUBACK.
func (p *Publisher) Pending() int { return p.queue.Len() }

// Connected reports whether the publisher has a live connection.
func (p *Publisher) Connected() bool {
	p.mu.Lock()
	s := p.sess
	p.mu.Unlock()
	return s != nil && !s.ended() && s.client.IsConnectionOpen()
}

// Counters returns the publisher's drop counts.
func (p *Publisher) Counters() Counters {
	return Counters{DroppedEvents: p.state.dropped(), DroppedCommands: p.droppedCommands.Load()}
}

// setSession makes s the live connection (nil: none) and wakes the
// goroutines waiting for a change.
func (p *Publisher) setSession(s *session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sess = s
	close(p.sessChanged)
	p.sessChanged = make(chan struct{})
}

// begin subscribes the filters on a new connection and makes it live. The
// SUBSCRIBE packets are issued before the session is live, so they go out
// ahead of any publish; their SUBACKs are awaited after, so that alerts do
// not wait for them. Each filter is subscribed exactly once: those added by
// Subscribe while this runs are caught when the session goes live, under
// the lock Subscribe takes.
func (p *Publisher) begin(s *session) {
	p.mu.Lock()
	todo := maps.Clone(p.subs)
	p.mu.Unlock()
	var toks []subscription
	for f, h := range todo {
		toks = append(toks, p.issueSubscribe(s, f, h))
	}

	p.mu.Lock()
	p.sess = s
	close(p.sessChanged)
	p.sessChanged = make(chan struct{})
	late := map[string]Intake{}
	for f, h := range p.subs {
		if _, ok := todo[f]; !ok {
			late[f] = h
		}
	}
	p.mu.Unlock()
	for f, h := range late {
		toks = append(toks, p.issueSubscribe(s, f, h))
	}

	for _, sub := range toks {
		if err := p.awaitSubscribe(sub); err != nil {
			// Without the subscription, commands would silently stop
			// arriving: drop this connection so the next one subscribes again.
			p.log.Error("resubscribe failed; reconnecting", "err", err)
			s.fail()
			return
		}
	}
}

// eachSession calls work with each new live session in turn, until the
// work stops.
func (p *Publisher) eachSession(work func(*session)) {
	var prev *session
	for {
		s := p.waitSession(prev)
		if s == nil {
			return
		}
		prev = s
		work(s)
	}
}

// awaitWork waits for a signal on wake; false when s ends or the work
// stops first.
func (p *Publisher) awaitWork(s *session, wake <-chan struct{}) bool {
	select {
	case <-wake:
		return true
	case <-s.end:
		return false
	case <-p.stopWork:
		return false
	}
}

// waitSession blocks until there is a live session other than prev, or the
// work stops (nil).
func (p *Publisher) waitSession(prev *session) *session {
	for {
		p.mu.Lock()
		s, changed := p.sess, p.sessChanged
		p.mu.Unlock()
		if s != nil && s != prev && !s.ended() {
			return s
		}
		select {
		case <-changed:
		case <-p.stopWork:
			return nil
		}
	}
}

// signal wakes the goroutine waiting on c without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// forward signals wake on each of n's notifications until stop is closed.
func forward(n outbox.Notifier, wake chan struct{}, stop <-chan struct{}) {
	for {
		select {
		case <-n.Notify():
			signal(wake)
		case <-stop:
			return
		}
	}
}

// Publish sends one QoS 1, non-retained message to a topic relative to the
// hall's root (such as "cmd/reply") on the live connection and waits for
// its PUBACK, at most the write timeout. It is for answers and notices that
// are worth nothing later, so nothing is queued: without a connection it
// fails at once. Reports never go this way.
func (p *Publisher) Publish(rel string, payload []byte) error {
	p.mu.Lock()
	s := p.sess
	p.mu.Unlock()
	if s == nil || s.ended() {
		return fmt.Errorf("mqtt: publish %s: not connected", rel)
	}
	if err := wait(s.client.Publish(p.topics.Under(rel), 1, false, payload), p.net.writeTimeout); err != nil {
		return fmt.Errorf("mqtt: publish %s: %w", rel, err)
	}
	return nil
}
