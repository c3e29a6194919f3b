package mqtt

// Connection handling. paho's own reconnect is off on purpose; see the
// comment on clientOptions.

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hallguard/hallguard/daemon/config"
)

// minBackoff is the first reconnect delay; it doubles up to MaxReconnect.
const minBackoff = time.Second

var errTimeout = errors.New("timed out")

// netSettings are the connection settings, checked. Defaults are the
// config's (config.Load): cfg must come from a loaded config.
type netSettings struct {
	url            string
	clientID       string
	username       string
	password       string
	tls            *tls.Config // nil for plain TCP
	keepalive      time.Duration
	connectTimeout time.Duration
	writeTimeout   time.Duration
	maxReconnect   time.Duration
}

func newNetSettings(cfg config.MQTT, password string) (netSettings, error) {
	u, err := url.Parse(cfg.Broker)
	if err != nil || u.Host == "" {
		return netSettings{}, fmt.Errorf("mqtt: broker %q is not a URL such as tcp://host:1883: %w", cfg.Broker, ErrConfig)
	}
	ns := netSettings{
		url:            cfg.Broker,
		clientID:       cfg.ClientID,
		username:       cfg.Username,
		password:       password,
		keepalive:      cfg.Keepalive.D(),
		connectTimeout: cfg.ConnectTimeout.D(),
		writeTimeout:   cfg.WriteTimeout.D(),
		maxReconnect:   cfg.MaxReconnect.D(),
	}
	// A config that missed config.Load's defaults is refused, not guessed
	// at: a zero write timeout fails every publish, a zero max_reconnect
	// reconnects without pause.
	if ns.clientID == "" || ns.keepalive <= 0 || ns.connectTimeout <= 0 || ns.writeTimeout <= 0 || ns.maxReconnect <= 0 {
		return netSettings{}, fmt.Errorf("mqtt: client_id, keepalive, connect_timeout, write_timeout and max_reconnect must be set (a loaded config has them): %w", ErrConfig)
	}
	hasFiles := cfg.TLS.CAFile != "" || cfg.TLS.CertFile != "" || cfg.TLS.KeyFile != ""
	switch u.Scheme {
	case "tcp", "mqtt":
		if hasFiles {
			return netSettings{}, fmt.Errorf("mqtt: tls files given but broker %q is plain TCP (use ssl://): %w", cfg.Broker, ErrConfig)
		}
	case "ssl", "tls", "mqtts":
		ns.tls, err = tlsConfig(cfg.TLS, u.Hostname())
		if err != nil {
			return netSettings{}, err
		}
	default:
		return netSettings{}, fmt.Errorf("mqtt: broker %q: unsupported scheme %q (want tcp, mqtt, ssl, tls or mqtts): %w", cfg.Broker, u.Scheme, ErrConfig)
	}
	return ns, nil
}

// tlsConfig loads the CA and the optional client certificate. Without a CA
// file the system roots are used. ServerName is set because paho's proxy
// path (netconn.go openConnection, all_proxy) does not derive it.
func tlsConfig(t config.TLS, host string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: tls ca_file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt: tls ca_file %s: no PEM certificate in it: %w", t.CAFile, ErrConfig)
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, fmt.Errorf("mqtt: tls cert_file and key_file go together: %w", ErrConfig)
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: tls client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// session is one MQTT connection: a paho client used for exactly one
// connection and then dropped.
type session struct {
	client   paho.Client
	end      chan struct{} // closed when the connection is over
	endOnce  sync.Once
	drop     chan struct{} // closed to ask the supervisor to drop it
	dropOnce sync.Once
	err      error // why it ended, when paho said; read after end is closed
}

func newSession() *session {
	return &session{end: make(chan struct{}), drop: make(chan struct{})}
}

func (s *session) close() { s.closeWith(nil) }

func (s *session) closeWith(err error) {
	s.endOnce.Do(func() {
		s.err = err
		close(s.end)
	})
}

// fail asks the supervisor to drop the connection: a publish failed or
// timed out, so what follows it on this connection cannot be trusted.
func (s *session) fail() { s.dropOnce.Do(func() { close(s.drop) }) }

// lostErr says why the session ended; call it after end is closed.
func (s *session) lostErr() error {
	if s.err == nil {
		return errConnectionLost
	}
	return fmt.Errorf("%w: %w", errConnectionLost, s.err)
}

func (s *session) ended() bool {
	select {
	case <-s.end:
		return true
	default:
		return false
	}
}

// supervise connects, waits for the connection to end, and reconnects with
// back-off, until stopConn.
func (p *Publisher) supervise() {
	defer close(p.superDone)
	var backoff time.Duration // the first attempt is immediate
	for {
		if backoff > 0 && !p.sleep(backoff) {
			return
		}
		s, err := p.connect()
		if errors.Is(err, ErrClosed) {
			return
		}
		if err != nil {
			backoff = p.nextBackoff(backoff)
			p.log.Warn("connect failed", "broker", p.net.url, "err", err, "retry_in_seconds", backoff.Seconds())
			continue
		}
		p.log.Info("connected", "broker", p.net.url, "client_id", p.net.clientID)
		p.begin(s)
		if p.onConn != nil {
			p.onConn(true)
		}
		select {
		case <-s.end:
			p.log.Warn("connection lost", "broker", p.net.url, "err", s.err)
		case <-s.drop:
			if !s.client.IsConnectionOpen() { // the failure was the connection going
				p.log.Warn("connection lost", "broker", p.net.url)
				break
			}
			p.log.Warn("dropping connection after a failed publish", "broker", p.net.url)
			p.goOffline(s, 0, time.Second)
		case <-p.stopConn:
			p.goOffline(s, 1, p.closeWait())
		}
		s.close()
		p.setSession(nil)
		if p.onConn != nil {
			p.onConn(false)
		}
		select {
		case <-p.stopConn:
			return
		default:
		}
		backoff = min(minBackoff, p.net.maxReconnect)
	}
}

func (p *Publisher) nextBackoff(b time.Duration) time.Duration {
	b = min(max(2*b, minBackoff), p.net.maxReconnect)
	return b - rand.N(b/4+1) // jitter, so that many halls do not reconnect in step
}

// sleep waits d on the publisher's clock; false if stopped first.
func (p *Publisher) sleep(d time.Duration) bool {
	done := make(chan struct{})
	t := p.clk.AfterFunc(d, func() { close(done) })
	select {
	case <-done:
		return true
	case <-p.stopConn:
		t.Stop()
		return false
	}
}

// closeWait bounds the "offline" publish on Close by the Close context.
func (p *Publisher) closeWait() time.Duration {
	w := p.net.writeTimeout
	if dl, ok := p.closeCtx.Deadline(); ok {
		w = min(w, max(time.Until(dl), 500*time.Millisecond))
	}
	return w
}

// connect makes one connection attempt with a fresh paho client and sends
// the birth message.
func (p *Publisher) connect() (*session, error) {
	s := newSession()
	o := p.clientOptions()
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		s.closeWith(err)
	})
	c := paho.NewClient(o)
	tok := c.Connect()
	t := time.NewTimer(p.net.connectTimeout + p.net.writeTimeout)
	defer t.Stop()
	select {
	case <-tok.Done():
	case <-t.C:
		c.Disconnect(0)
		return nil, fmt.Errorf("mqtt: connect to %s: %w", p.net.url, errTimeout)
	case <-p.stopConn:
		c.Disconnect(0)
		return nil, ErrClosed
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("mqtt: connect to %s: %w", p.net.url, err)
	}
	s.client = c
	// Birth: the counterpart of the will, on every connection.
	if err := wait(c.Publish(p.topics.Status(), 1, true, statusOnline), p.net.writeTimeout); err != nil {
		c.Disconnect(0)
		return nil, fmt.Errorf("mqtt: birth message: %w", err)
	}
	// Home Assistant discovery, retained, on every connection (a broker
	// without persistence forgets it).
	for _, m := range p.discovery.messages(p.topics) {
		if err := wait(c.Publish(m.topic, 1, true, m.payload), p.net.writeTimeout); err != nil {
			p.log.Warn("discovery message not sent", "topic", m.topic, "err", err)
		}
	}
	return s, nil
}

// clientOptions are the paho options of one connection.
//
// paho's auto-reconnect and ConnectRetry are off, and each connection gets
// a new client, because with them paho itself resends what it holds in its
// store, and that breaks the publisher's guarantees (paho v1.5.1):
//   - reconnect() calls resume() on every reconnect, whatever CleanSession
//     says (client.go:346); resume() resends the stored QoS 1 publishes in
//     the order of MemoryStore.All(), which ranges over a map (memstore.go:96):
//     reports would be reordered, and an old retained value could land after
//     the fresh one the publisher sends on connect.
//   - resume() re-claims each stored message id, and claimID completes the
//     original token without error (messageids.go:97 old.flowComplete()):
//     the Publish token would report success though no PUBACK came.
//   - with ConnectRetry and CleanSession, publishes made before the first
//     connection are stored and then wiped by persist.Reset() after it
//     (client.go:293): their tokens never complete.
//
// Without auto-reconnect a lost connection completes every pending token
// with an error (client.go:575 messageIds.cleanUp()), and with
// CleanSession the store is reset on connect, so paho never resends: the
// queue is the only source of resends. The default memory store stays.
func (p *Publisher) clientOptions() *paho.ClientOptions {
	o := paho.NewClientOptions().
		AddBroker(p.net.url).
		SetClientID(p.net.clientID).
		SetProtocolVersion(4). // MQTT 3.1.1, no fallback to 3.1
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetOrderMatters(true).
		SetAutoAckDisabled(true). // an admitted command is acknowledged once handled (SubscribeIntake)
		SetKeepAlive(p.net.keepalive).
		SetPingTimeout(p.net.writeTimeout).
		SetConnectTimeout(p.net.connectTimeout).
		SetWriteTimeout(p.net.writeTimeout).
		SetMaxReconnectInterval(p.net.maxReconnect).
		SetDialer(&net.Dialer{Timeout: p.net.connectTimeout}).
		SetWill(p.topics.Status(), statusOffline, 1, true)
	if p.net.username != "" {
		o.SetUsername(p.net.username).SetPassword(p.net.password)
	}
	if p.net.tls != nil {
		o.SetTLSConfig(p.net.tls)
	}
	return o
}

// goOffline publishes "offline" retained on status and disconnects. On a
// dropped connection the broker would not send the will after our
// DISCONNECT [MQTT-3.1.2-10], so the status is set by hand.
func (p *Publisher) goOffline(s *session, qos byte, d time.Duration) {
	if err := wait(s.client.Publish(p.topics.Status(), qos, true, statusOffline), d); err != nil {
		p.log.Warn("offline status not sent", "err", err)
	}
	s.client.Disconnect(250)
}

// wait waits at most d for tok, and returns its error or a timeout.
func wait(tok paho.Token, d time.Duration) error {
	if done(tok) { // WaitTimeout(0) may pick its timer over a completed token
		return tok.Error()
	}
	if !tok.WaitTimeout(d) {
		return errTimeout
	}
	return tok.Error()
}

// Intake is how a subscription's messages are taken in, in two stages, so
// that junk can never crowd out a command that checks out (§4.3: the
// center's resolve of a robbery must not be lost to a flood on cmd/).
type Intake interface {
	// Admit runs for every message, on the connection's receiving
	// goroutine, before anything is queued: it must be quick and must
	// never block or publish (the PUBACKs of reports are read by the same
	// goroutine). It returns what Handle gets, or an error to refuse the
	// message.
	Admit(topic string, payload []byte) (any, error)
	// Handle runs for each admitted message, one at a time in arrival
	// order, on the handler goroutine. The broker gets the message's
	// PUBACK only when Handle returns.
	Handle(topic string, admitted any)
	// Refuse runs for each refused message, in order, on a goroutine of
	// its own. A refused message is acknowledged to the broker at once.
	// When more than refusedBacklog refusals wait, the newest are dropped
	// and counted (Counters.DroppedCommands), never the admitted ones.
	Refuse(topic string, payload []byte, err error)
}

// refusedBacklog bounds the refusals waiting for Intake.Refuse;
// maxAdmitted bounds the admitted messages waiting for Intake.Handle (an
// admitted command is signed and fresh, so only the key holder can fill
// it; past it, messages are refused with ErrOverload).
const (
	refusedBacklog = 256
	maxAdmitted    = 10000
)

// ErrOverload is given to Intake.Refuse for a message admitted while
// maxAdmitted others waited.
var ErrOverload = errors.New("mqtt: too many admitted messages waiting")

// plainIntake admits every message for a handler (Subscribe).
type plainIntake func(topic string, payload []byte)

func (h plainIntake) Admit(_ string, payload []byte) (any, error) { return bytes.Clone(payload), nil }
func (h plainIntake) Handle(topic string, v any)                  { h(topic, v.([]byte)) }
func (h plainIntake) Refuse(string, []byte, error)                {}

// Subscribe subscribes handler to filter (SubscribeIntake with an intake
// that admits everything, one at a time in arrival order).
func (p *Publisher) Subscribe(filter string, handler func(topic string, payload []byte)) error {
	if handler == nil {
		return fmt.Errorf("mqtt: subscribe %q: nil handler: %w", filter, ErrConfig)
	}
	return p.SubscribeIntake(filter, plainIntake(handler))
}

// SubscribeIntake subscribes to filter, given relative to the hall's root
// ("cmd/+" is <prefix>/<hall>/cmd/+), at QoS 1, now if connected and again
// on every connection (a clean session forgets subscriptions). The intake
// gets the topic relative to the root. Retained messages are acknowledged
// and ignored: a command acts when it is sent, never again from the
// broker's store.
func (p *Publisher) SubscribeIntake(filter string, in Intake) error {
	if in == nil || filter == "" {
		return fmt.Errorf("mqtt: subscribe %q: empty filter or nil intake: %w", filter, ErrConfig)
	}
	p.mu.Lock()
	if p.closed.Load() {
		p.mu.Unlock()
		return ErrClosed
	}
	p.subs[filter] = in
	s := p.sess
	p.mu.Unlock()
	if s == nil || s.ended() {
		return nil
	}
	return p.subscribe(s, filter, in)
}

func (p *Publisher) subscribe(s *session, filter string, in Intake) error {
	return p.awaitSubscribe(p.issueSubscribe(s, filter, in))
}

type subscription struct {
	topic string
	tok   paho.Token
}

// issueSubscribe sends the SUBSCRIBE for filter without waiting for the
// SUBACK.
func (p *Publisher) issueSubscribe(s *session, filter string, in Intake) subscription {
	full := p.topics.Under(filter)
	tok := s.client.Subscribe(full, 1, func(_ paho.Client, m paho.Message) {
		if m.Retained() {
			m.Ack()
			return
		}
		rel, _ := p.topics.Rel(m.Topic())
		v, err := in.Admit(rel, m.Payload())
		if err == nil && !p.admit(admitted{in: in, topic: rel, v: v, ack: m.Ack}) {
			err = ErrOverload
		}
		if err == nil {
			return // acknowledged once handled
		}
		m.Ack()
		select {
		case p.refused <- refusal{in: in, topic: rel, payload: bytes.Clone(m.Payload()), err: err}:
		default:
			p.droppedCommands.Add(1)
		}
	})
	return subscription{full, tok}
}

// awaitSubscribe waits for the SUBACK, at most the write timeout.
func (p *Publisher) awaitSubscribe(sub subscription) error {
	if err := wait(sub.tok, p.net.writeTimeout); err != nil {
		return fmt.Errorf("mqtt: subscribe %s: %w", sub.topic, err)
	}
	if st, ok := sub.tok.(*paho.SubscribeToken); ok {
		for _, code := range st.Result() {
			if code == 0x80 { // SUBACK failure [MQTT-3.9.3]
				return fmt.Errorf("mqtt: subscribe %s: refused by the broker", sub.topic)
			}
		}
	}
	return nil
}

type admitted struct {
	in    Intake
	topic string
	v     any
	ack   func()
}

type refusal struct {
	in      Intake
	topic   string
	payload []byte
	err     error
}

// admit queues a for the handler goroutine; false when maxAdmitted wait.
func (p *Publisher) admit(a admitted) bool {
	p.admMu.Lock()
	if len(p.adm) >= maxAdmitted {
		p.admMu.Unlock()
		return false
	}
	p.adm = append(p.adm, a)
	p.admMu.Unlock()
	signal(p.admWake)
	return true
}

func (p *Publisher) commandLoop() {
	for {
		p.admMu.Lock()
		batch := p.adm
		p.adm = nil
		p.admMu.Unlock()
		for _, a := range batch {
			a.in.Handle(a.topic, a.v)
			a.ack()
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-p.admWake:
		case <-p.stopWork:
			return
		}
	}
}

func (p *Publisher) refuseLoop() {
	for {
		select {
		case r := <-p.refused:
			r.in.Refuse(r.topic, r.payload, r.err)
		case <-p.stopWork:
			return
		}
	}
}
