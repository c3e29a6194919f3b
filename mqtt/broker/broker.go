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
// loopback IP: the embedded broker has no authentication.
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
// log is enabled for debug.
func Start(addr string, log *slog.Logger) (*Broker, error) {
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
	g := &gate{}
	if err := srv.AddHook(g, nil); err != nil {
		return nil, fmt.Errorf("broker: hook: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{Type: listeners.TypeTCP, ID: listenerID, Address: addr})
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
	cl.Stop(errors.New("broker: connection dropped"))
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
		// clients from a copy instead; srv.Close then finds the listener
		// closed and only waits for the client goroutines.
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

// gate allows every client and topic, as mochi's hooks/auth AllowHook does
// (that package is not imported: its ledger pulls in a YAML module), refuses
// PUBLISH packets once the broker is closing, and counts the ones being
// routed (between OnPublish, before the PUBACK, and OnPublished, after the
// copies to subscribers are queued).
type gate struct {
	mochi.HookBase
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

// OnConnectAuthenticate allows every client: the listener is on loopback.
func (g *gate) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }

// OnACLCheck allows every topic, for reading and writing.
func (g *gate) OnACLCheck(*mochi.Client, string, bool) bool { return true }

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
