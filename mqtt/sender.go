package mqtt

// Report delivery: the part that must not lose anything.
//
// The queue is the source of truth. On each connection the sender publishes
// the queued reports oldest first, each to alerts/... and then, retained, to
// incidents/<id> (QoS 1 both), keeping up to MaxInflight reports
// outstanding. It retires only the oldest report, and only when both its
// publishes completed without error, which with paho's reconnect off means a
// PUBACK arrived (net.go: PubackPacket → flowComplete). Anything else — an
// error, no PUBACK within the write timeout, a lost connection — ends the
// connection (the supervisor drops it if it is still up), and the next
// connection starts again from the oldest report still queued, with the same
// ids. Within one TCP connection the broker receives a prefix of what was
// written, so a receiver sees every report at least once, and the first
// copies of each incident's versions in order; later copies are duplicates
// it drops by id.
//
// One gap is paho's: after a failed write its writer goes on with the next
// packet until the connection is torn down (net.go:295-300), so a PUBLISH
// whose write timed out with nothing written could be overtaken by the next
// one. It takes a network stalled for the whole write timeout that recovers
// in that instant.

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/outbox"
)

var errConnectionLost = errors.New("mqtt: connection lost")

// flight is a report handed to paho on the current connection.
type flight struct {
	msg      outbox.Message
	alert    paho.Token
	incident paho.Token
	payload  []byte
	deadline time.Time // real time by which both PUBACKs are due
}

// sender's maps belong to the sender goroutine.
type sender struct {
	p *Publisher
	// sent holds the ids handed to paho at least once and not yet retired:
	// their next copies are marked redelivered.
	sent map[string]bool
	// open holds, per incident still active or acknowledged, the payload of
	// its latest retired report: republished retained on every connection,
	// in case the broker lost its retained messages.
	open map[string][]byte
}

func (p *Publisher) sendLoop() {
	sd := &sender{p: p, sent: map[string]bool{}, open: map[string][]byte{}}
	p.eachSession(sd.run)
}

// run delivers the queue on s until s ends, a publish fails or the work
// stops.
func (sd *sender) run(s *session) {
	p := sd.p
	sd.republishOpen(s)
	var window []flight
	for {
		var err error
		if window, err = sd.fill(s, window); err != nil {
			sd.abandon(window, err)
			s.fail()
			return
		}
		if len(window) == 0 {
			if !p.awaitWork(s, p.wakeSend) {
				return
			}
			continue
		}
		head := &window[0]
		tok := head.alert
		if done(tok) {
			tok = head.incident
		}
		if done(tok) {
			if err := cmp.Or(head.alert.Error(), head.incident.Error()); err != nil {
				sd.abandon(window, fmt.Errorf("mqtt: report %s: %w", head.msg.ID, err))
				s.fail()
				return
			}
			sd.retire(head)
			window = window[1:]
			continue
		}
		t := time.NewTimer(time.Until(head.deadline))
		select {
		case <-tok.Done():
		case <-p.wakeSend: // a new report: fill the window
		case <-t.C:
			sd.abandon(window, fmt.Errorf("mqtt: report %s: no PUBACK within %s: %w", head.msg.ID, p.net.writeTimeout, errTimeout))
			s.fail()
			return
		case <-s.end:
			t.Stop()
			sd.abandon(window, s.lostErr())
			return
		case <-p.stopWork:
			t.Stop()
			return
		}
		t.Stop()
	}
}

// fill publishes queued reports after the window until it holds MaxInflight.
func (sd *sender) fill(s *session, window []flight) ([]flight, error) {
	p := sd.p
	if len(window) >= p.window {
		return window, nil
	}
	msgs := p.queue.Peek(p.window)
	for _, m := range msgs[min(len(window), len(msgs)):] {
		f, err := sd.publish(s, m)
		if f.alert != nil {
			window = append(window, f)
		}
		if err != nil {
			return window, err
		}
	}
	return window, nil
}

func (sd *sender) publish(s *session, m outbox.Message) (flight, error) {
	p := sd.p
	if m.Side != nil {
		return sd.publishSide(s, m)
	}
	r := m.Report
	pl := NewReportPayload(r, p.clk.Now())
	pl.Redelivered = m.Redelivered || sd.sent[m.ID]
	pl.NotDurable = m.NotDurable
	if p.head != nil {
		seq, hash := p.head()
		pl.Journal = &JournalPayload{Seq: seq, Hash: hash}
	}
	b, err := marshal(pl) // cannot fail: the payload holds no floats or times JSON refuses
	if err != nil {
		return flight{}, err
	}
	sd.sent[m.ID] = true
	f := flight{msg: m, payload: b}
	f.alert = s.client.Publish(p.topics.Alert(r.Playbook, r.Drill), 1, false, b)
	if err := failed(f.alert); err != nil {
		return f, fmt.Errorf("mqtt: publish report %s: %w", m.ID, err)
	}
	f.incident = s.client.Publish(p.topics.Incident(r.Incident), 1, true, b)
	if err := failed(f.incident); err != nil {
		return f, fmt.Errorf("mqtt: publish report %s: %w", m.ID, err)
	}
	f.deadline = time.Now().Add(p.net.writeTimeout)
	return f, nil
}

// publishSide publishes a side record once, QoS 1, not retained, on its
// topic; both tokens of its flight are that one publish.
func (sd *sender) publishSide(s *session, m outbox.Message) (flight, error) {
	p := sd.p
	sd.sent[m.ID] = true
	f := flight{msg: m, payload: m.Side.Payload}
	f.alert = s.client.Publish(p.topics.Under(m.Side.Topic), 1, false, m.Side.Payload)
	f.incident = f.alert
	if err := failed(f.alert); err != nil {
		return f, fmt.Errorf("mqtt: publish record %s: %w", m.ID, err)
	}
	f.deadline = time.Now().Add(p.net.writeTimeout)
	return f, nil
}

// retire removes the acknowledged head report from the queue.
func (sd *sender) retire(f *flight) {
	p := sd.p
	r := f.msg.Report
	p.queue.Ack(f.msg.ID)
	delete(sd.sent, f.msg.ID)
	if f.msg.Side != nil {
		p.log.Debug("record acknowledged", "record", f.msg.ID)
		if p.onRecAck != nil {
			p.onRecAck(f.msg, p.clk.Now())
		}
		signal(p.acked)
		return
	}
	if r.State == engine.StateActive || r.State == engine.StateAcknowledged {
		sd.open[r.Incident] = f.payload
	} else {
		delete(sd.open, r.Incident)
	}
	p.log.Debug("report acknowledged", "report", r.ID)
	if p.onAck != nil {
		p.onAck(r, p.clk.Now())
	}
	signal(p.acked)
}

// abandon reports the window's reports as failed; they stay queued.
func (sd *sender) abandon(window []flight, err error) {
	if len(window) == 0 {
		return
	}
	sd.p.log.Warn("reports not acknowledged, will resend", "reports", len(window), "first", window[0].msg.ID, "err", err)
	if sd.p.onFail == nil {
		return
	}
	for _, f := range window {
		if f.msg.Side == nil {
			sd.p.onFail(f.msg.Report, err)
		}
	}
}

// republishOpen publishes the retained incidents/<id> of the open incidents
// whose latest report is already retired. Their tokens are not awaited:
// every later report on the connection is, and a failure there ends it.
func (sd *sender) republishOpen(s *session) {
	ids := make([]string, 0, len(sd.open))
	for id := range sd.open {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		s.client.Publish(sd.p.topics.Incident(id), 1, true, sd.open[id])
	}
}

func done(tok paho.Token) bool {
	select {
	case <-tok.Done():
		return true
	default:
		return false
	}
}

// failed returns the token's error if it has already completed with one.
func failed(tok paho.Token) error {
	if done(tok) {
		return tok.Error()
	}
	return nil
}
