package hallproc

import (
	"fmt"
	"slices"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Message is one MQTT message as a subscriber received it.
type Message struct {
	Topic    string
	Payload  []byte
	Retained bool
	At       time.Time // receipt by the subscription's callback
}

// Inbox collects the messages of a subscription.
type Inbox struct {
	mu   sync.Mutex
	cond *sync.Cond
	msgs []Message
}

// NewInbox is an empty inbox.
func NewInbox() *Inbox {
	b := &Inbox{}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// Subscribe subscribes c to filter at QoS 1 into a new inbox, waiting up
// to timeout for the SUBACK.
func Subscribe(c paho.Client, filter string, timeout time.Duration) (*Inbox, error) {
	b := NewInbox()
	tok := c.Subscribe(filter, 1, b.Keep)
	if !tok.WaitTimeout(timeout) || tok.Error() != nil {
		return nil, fmt.Errorf("subscribe %s: %v", filter, tok.Error())
	}
	return b, nil
}

// Keep is the paho message handler that collects m, timestamped first.
func (b *Inbox) Keep(_ paho.Client, m paho.Message) {
	at := time.Now()
	b.mu.Lock()
	b.msgs = append(b.msgs, Message{m.Topic(), append([]byte(nil), m.Payload()...), m.Retained(), at})
	b.cond.Broadcast()
	b.mu.Unlock()
}

// Mark is the index the next message will get.
func (b *Inbox) Mark() int { return b.Len() }

// Len is how many messages the inbox holds.
func (b *Inbox) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.msgs)
}

// All is a copy of the messages held.
func (b *Inbox) All() []Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.msgs)
}

// Reset forgets every message held.
func (b *Inbox) Reset() {
	b.mu.Lock()
	b.msgs = nil
	b.mu.Unlock()
}

// Wait returns the first message at index from or later that ok accepts,
// waiting up to d. abort, if set, is asked at least every 100 ms and ends
// the wait when it says so. The bool is false when nothing matched.
func (b *Inbox) Wait(from int, d time.Duration, abort func() bool, ok func(Message) bool) (Message, bool) {
	return b.wait(from, d, abort, ok, false)
}

// Take is Wait from the first message, and removes the one it returns.
func (b *Inbox) Take(d time.Duration, ok func(Message) bool) (Message, bool) {
	return b.wait(0, d, nil, ok, true)
}

func (b *Inbox) wait(from int, d time.Duration, abort func() bool, ok func(Message) bool, remove bool) (Message, bool) {
	deadline := time.Now().Add(d)
	wake := time.AfterFunc(d, b.broadcast)
	defer wake.Stop()
	if abort != nil {
		stop := make(chan struct{})
		defer close(stop)
		go b.tick(stop)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		for i := from; i < len(b.msgs); i++ {
			if m := b.msgs[i]; ok(m) {
				if remove {
					b.msgs = slices.Delete(b.msgs, i, i+1)
				}
				return m, true
			}
		}
		if (abort != nil && abort()) || time.Now().After(deadline) {
			return Message{}, false
		}
		b.cond.Wait()
	}
}

func (b *Inbox) broadcast() { b.mu.Lock(); b.cond.Broadcast(); b.mu.Unlock() }

// tick wakes the waiters every 100 ms until stop is closed.
func (b *Inbox) tick(stop <-chan struct{}) {
	tk := time.NewTicker(100 * time.Millisecond)
	defer tk.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tk.C:
			b.broadcast()
		}
	}
}
