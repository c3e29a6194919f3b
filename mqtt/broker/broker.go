package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// MaxPacketSize is the largest MQTT packet the embedded broker reads: the
// largest commands.max_payload (1 MiB) and room for the topic. A larger one
// closes the connection that sent it [MQTT-3.2.2-15] before its body is
// read, so a 60 MB publish costs neither the broker nor the daemon memory.
const MaxPacketSize = 1<<20 + 64<<10

// ErrNotLoopback is returned by Start for a listen address that is not a
// loopback IP: the embedded broker has no TLS.
var ErrNotLoopback = errors.New("broker: listen address is not on loopback")

// drainTimeout bounds how long Close waits for subscribers to acknowledge
// what the broker has already acknowledged to publishers.
const drainTimeout = 2 * time.Second

const listenerID = "hallguard"

// Broker is a running embedded broker.
type Broker struct {
	srv  *mochi.Server
	gate *gate
	addr string

	closeOnce sync.Once
	closeErr  error
}

// Start starts a broker with one TCP listener on addr ("127.0.0.1:1883", or
// "127.0.0.1:0" for a port chosen by the OS) and returns once it listens.
// The host must be a loopback IP; anything else is refused with
// ErrNotLoopback. log may be nil; mochi logs only warnings and errors unless
// log is enabled for debug. Without WithAuth every client may do anything
// (tests); the daemon always starts it with WithAuth.
func Start(addr string, log *slog.Logger, opts ...Option) (*Broker, error) {
	var set settings
	for _, o := range opts {
		o(&set)
	}
	if set.auth != nil {
		if err := set.auth.check(); err != nil {
			return nil, err
		}
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("broker: listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("broker: listen address %q: %w", addr, ErrNotLoopback)
	}

	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = MaxPacketSize
	srv := mochi.New(&mochi.Options{Logger: quiet(log), Capabilities: caps})
	g := &gate{auth: set.auth, log: quiet(log)}
	if err := srv.AddHook(g, nil); err != nil {
		return nil, fmt.Errorf("broker: hook: %w", err)
	}
	tcp := &listener{id: listenerID, address: addr, conns: map[net.Conn]struct{}{}}
	if err := srv.AddListener(tcp); err != nil { // Init listens: after this, connections queue up
		return nil, fmt.Errorf("broker: listen on %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("broker: serve: %w", err)
	}
	return &Broker{srv: srv, gate: g, addr: tcp.Address()}, nil
}

// Addr returns the address the broker listens on, with the real port.
func (b *Broker) Addr() string { return b.addr }

// URL returns the broker's address as a client URL, tcp://host:port.
func (b *Broker) URL() string { return "tcp://" + b.addr }

// Disconnect drops the network connection of the client with the given id
// without an MQTT DISCONNECT, as a network failure would: the broker
// publishes the client's will. It reports whether such a client was
// connected. Meant for tests and fault drills.
func (b *Broker) Disconnect(clientID string) bool {
	cl, ok := b.srv.Clients.Get(clientID)
	if !ok || cl.Closed() {
		return false
	}
	// Close the socket only, as a network failure does. cl.Stop would also
	// mark the client closed, and a client stopped before mochi's read loop
	// began (it may still be finishing its CONNACK) ends as if it had sent
	// DISCONNECT: no will (clients.go Read returns nil when Closed). With the
	// socket closed, the read loop fails whenever it runs, and mochi sends
	// the will (server.go attachClient).
	if cl.Net.Conn == nil {
		return false
	}
	_ = cl.Net.Conn.Close()
	return true
}

// Close stops the broker. It first refuses new PUBLISH packets (they stay
// unacknowledged at their publisher), waits up to 2 s until the messages
// already acknowledged have been acknowledged by QoS 1 subscribers, then
// disconnects every client and closes the listener. It returns once the port
// is free. Close is idempotent.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.gate.closing.Store(true)
		b.drain(time.Now().Add(drainTimeout))
		// mochi's own closer (server.go closeListenerClients) calls
		// Clients.GetByListener, which takes the clients' read lock twice
		// (clients.go:95 calls cl.Len under RLock): a client
		// connecting or leaving in between deadlocks Close. Disconnect the
		// clients from a copy instead. The listener's Close stops its
		// accept loop and waits for every connection it handed to mochi
		// (see listener), so srv.Close finds it closed and its
		// ClientsWg.Wait no longer races a late ClientsWg.Add.
		b.srv.Listeners.CloseAll(func(id string) {
			for _, cl := range b.srv.Clients.GetAll() {
				if cl.Net.Listener == id && !cl.Closed() {
					_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
				}
			}
		})
		if err := b.srv.Close(); err != nil {
			b.closeErr = fmt.Errorf("broker: close: %w", err)
		}
	})
	return b.closeErr
}

// listener is mochi's TCP listener (listeners/tcp.go) with one change in the
// shutdown order. mochi's accept loop starts a goroutine per connection, and
// that goroutine calls Listeners.ClientsWg.Add only once it runs
// (server.go attachClient), so Server.Close's ClientsWg.Wait can race a
// connection accepted just before the listener closed: a data race under
// -race, and "WaitGroup is reused" panics. This listener counts each
// connection before its goroutine starts, and Close returns only after it
// has stopped accepting, disconnected the clients, closed every connection
// still being set up, and waited for all of their goroutines. By then every
// Add and Done on ClientsWg has happened.
type listener struct {
	id, address string
	log         *slog.Logger

	mu     sync.Mutex
	ln     net.Listener
	closed bool
	conns  map[net.Conn]struct{} // handed to mochi, not yet returned
	served sync.WaitGroup        // the accept loop
	active sync.WaitGroup        // one per connection handed to mochi
}

var _ listeners.Listener = (*listener)(nil)

func (l *listener) ID() string       { return l.id }
func (l *listener) Protocol() string { return "tcp" }

func (l *listener) Address() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.address
}

// Init listens on the address; mochi calls it from AddListener.
func (l *listener) Init(log *slog.Logger) error {
	ln, err := net.Listen("tcp", l.address)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.ln, l.log = ln, log
	l.mu.Unlock()
	return nil
}

// Serve accepts until Close; mochi calls it once, from Server.Serve.
func (l *listener) Serve(establish listeners.EstablishFn) {
	l.mu.Lock()
	if l.closed || l.ln == nil {
		l.mu.Unlock()
		return
	}
	l.served.Add(1) // under mu, before Close can set closed and Wait
	l.mu.Unlock()
	defer l.served.Done()
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			return // closed
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = conn.Close()
			continue
		}
		l.conns[conn] = struct{}{}
		l.active.Add(1)
		l.mu.Unlock()
		go func() {
			defer l.active.Done()
			if err := establish(l.id, conn); err != nil && l.log != nil {
				l.log.Debug("client ended", "err", err)
			}
			l.mu.Lock()
			delete(l.conns, conn)
			l.mu.Unlock()
		}()
	}
}

// Close stops accepting, lets closeClients disconnect the attached clients,
// closes what is left (connections still in their CONNECT exchange) and
// waits until every connection's goroutine has returned. A second call only
// waits.
func (l *listener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	first := !l.closed
	l.closed = true
	ln := l.ln
	l.mu.Unlock()
	if ln == nil {
		return
	}
	if first {
		_ = ln.Close()
	}
	l.served.Wait() // no Accept can hand out a connection after this
	if first {
		closeClients(l.id)
		l.mu.Lock()
		for c := range l.conns {
			_ = c.Close()
		}
		l.mu.Unlock()
	}
	l.active.Wait()
}

// drain waits until no PUBLISH is being routed and no connected client has
// QoS 1/2 messages waiting for its acknowledgement, or until deadline.
func (b *Broker) drain(deadline time.Time) {
	for time.Now().Before(deadline) {
		if b.gate.busy.Load() <= 0 && b.idle() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (b *Broker) idle() bool {
	for _, cl := range b.srv.Clients.GetAll() {
		if !cl.Closed() && cl.State.Inflight.Len() > 0 {
			return false
		}
	}
	return true
}

// gate authenticates clients and applies the ACL when auth is set (auth.go;
// mochi's hooks/auth is not imported: its ledger pulls in another YAML
// module, and its rules cannot reserve a client id or check a will), refuses
// PUBLISH packets once the broker is closing, and counts the ones being
// routed (between OnPublish, before the PUBACK, and OnPublished, after the
// copies to subscribers are queued).
type gate struct {
	mochi.HookBase
	auth    *Auth // nil: everyone may do anything
	log     *slog.Logger
	closing atomic.Bool
	busy    atomic.Int64
}

var _ mochi.Hook = (*gate)(nil)

func (g *gate) ID() string { return "hallguard-gate" }

func (g *gate) Provides(b byte) bool {
	switch b {
	case mochi.OnConnectAuthenticate, mochi.OnACLCheck, mochi.OnPublish, mochi.OnPublished:
		return true
	}
	return false
}

// OnPublish rejects the packet while closing: mochi then neither
// acknowledges nor forwards it (server.go processPublish, ErrRejectPacket).
func (g *gate) OnPublish(_ *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if g.closing.Load() {
		return pk, packets.ErrRejectPacket
	}
	g.busy.Add(1)
	return pk, nil
}

func (g *gate) OnPublished(*mochi.Client, packets.Packet) { g.busy.Add(-1) }

// quiet returns the logger mochi gets: log itself when it is enabled for
// debug, else log filtered to warnings and errors; nil discards.
func quiet(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "broker")
	if log.Enabled(context.Background(), slog.LevelDebug) {
		return log
	}
	return slog.New(minLevel{h: log.Handler(), min: slog.LevelWarn})
}

// minLevel drops records below min.
type minLevel struct {
	h   slog.Handler
	min slog.Level
}

var _ slog.Handler = minLevel{}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}

func (m minLevel) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }

func (m minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h: m.h.WithAttrs(as), min: m.min}
}

func (m minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h: m.h.WithGroup(name), min: m.min}
}
