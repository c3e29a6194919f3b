package mqtt

// Retained state: inputs/<id>, queue, conditions, and the condition events.
// Values are coalesced: only the latest per topic is kept and published, by
// one goroutine, so the last value published on a connection is the latest.
// After every (re)connection all of them are published again.

import (
	"cmp"
	"slices"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hallguard/hallguard/daemon/engine"
)

// maxEvents bounds the condition events kept while disconnected.
const maxEvents = 1024

type stateStore struct {
	topics Topics

	mu       sync.Mutex
	values   map[string]any // topic → payload value, the latest
	dirty    map[string]bool
	active   map[condKey]engine.Condition
	events   []ConditionPayload
	ndropped uint64
}

func newStateStore(t Topics) *stateStore {
	s := &stateStore{topics: t, values: map[string]any{}, dirty: map[string]bool{}, active: map[condKey]engine.Condition{}}
	// An empty array from the start, so a stale one from a previous run is
	// replaced on the first connection.
	s.values[t.Conditions()] = conditionsPayload(s.active)
	s.dirty[t.Conditions()] = true
	return s
}

func (s *stateStore) set(topic string, v any) {
	s.mu.Lock()
	s.values[topic] = v
	s.dirty[topic] = true
	s.mu.Unlock()
}

func (s *stateStore) condition(c engine.Condition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Active {
		s.active[keyOf(c)] = c
	} else {
		delete(s.active, keyOf(c))
	}
	t := s.topics.Conditions()
	s.values[t] = conditionsPayload(s.active)
	s.dirty[t] = true
	s.events = append(s.events, newConditionPayload(c))
	if n := len(s.events) - maxEvents; n > 0 {
		s.events = slices.Delete(s.events, 0, n)
		s.ndropped += uint64(n)
	}
}

// clearRetained is the value of a topic whose retained message is deleted:
// it is published as an empty retained payload [MQTT-3.3.1-10].
type clearRetained struct{}

type retained struct {
	topic string
	value any
}

// take returns the dirty values, in topic order, and the pending events,
// and clears both.
func (s *stateStore) take() ([]retained, []ConditionPayload) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := make([]retained, 0, len(s.dirty))
	for t := range s.dirty {
		rs = append(rs, retained{t, s.values[t]})
	}
	clear(s.dirty)
	slices.SortFunc(rs, func(a, b retained) int { return cmp.Compare(a.topic, b.topic) })
	ev := s.events
	s.events = nil
	return rs, ev
}

// giveBack marks the topics of a failed batch dirty again (their latest
// value will go) and puts its events back in front of newer ones.
func (s *stateStore) giveBack(rs []retained, ev []ConditionPayload) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rs {
		s.dirty[r.topic] = true
	}
	s.events = append(ev, s.events...)
	if n := len(s.events) - maxEvents; n > 0 {
		s.events = slices.Delete(s.events, 0, n)
		s.ndropped += uint64(n)
	}
}

func (s *stateStore) markAll() {
	s.mu.Lock()
	for t := range s.values {
		s.dirty[t] = true
	}
	s.mu.Unlock()
}

func (s *stateStore) dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ndropped
}

func (p *Publisher) stateLoop() {
	p.eachSession(func(s *session) {
		p.state.markAll()
		p.publishState(s)
	})
}

// publishState publishes state changes on s until it ends or fails.
func (p *Publisher) publishState(s *session) {
	for {
		rs, ev := p.state.take()
		if len(rs)+len(ev) == 0 {
			if !p.awaitWork(s, p.wakeState) {
				return
			}
			continue
		}
		var toks []waiting
		for _, r := range rs {
			if _, ok := r.value.(clearRetained); ok {
				toks = append(toks, waiting{r.topic, s.client.Publish(r.topic, 1, true, []byte{})})
				continue
			}
			b, err := marshal(r.value)
			if err != nil { // cannot happen: the payloads hold only JSON-safe values
				p.log.Error("state not encoded", "topic", r.topic, "err", err)
				continue
			}
			toks = append(toks, waiting{r.topic, s.client.Publish(r.topic, 1, true, b)})
		}
		for _, e := range ev {
			b, err := marshal(e)
			if err != nil {
				p.log.Error("condition event not encoded", "err", err)
				continue
			}
			toks = append(toks, waiting{p.topics.ConditionEvents(), s.client.Publish(p.topics.ConditionEvents(), 1, false, b)})
		}
		deadline := time.Now().Add(p.net.writeTimeout)
		for _, w := range toks {
			if err := wait(w.tok, max(time.Until(deadline), 0)); err != nil {
				p.log.Warn("state publish failed", "topic", w.topic, "err", err)
				p.state.giveBack(rs, ev)
				s.fail()
				return
			}
		}
	}
}

type waiting struct {
	topic string
	tok   paho.Token
}
