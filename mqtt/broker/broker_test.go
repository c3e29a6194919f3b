package broker

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func connect(t *testing.T, url, id string) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func TestRetainedPublishReachesLaterSubscriber(t *testing.T) {
	b, err := Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, port, _ := net.SplitHostPort(b.Addr()); port == "0" || port == "" {
		t.Fatalf("Addr() = %q, want the real port", b.Addr())
	}

	pub := connect(t, b.URL(), "pub")
	if tok := pub.Publish("t/hall/status", 1, true, "online"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}

	got := make(chan paho.Message, 1)
	sub := connect(t, b.URL(), "sub")
	tok := sub.Subscribe("t/#", 1, func(_ paho.Client, m paho.Message) { got <- m })
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	select {
	case m := <-got:
		if m.Topic() != "t/hall/status" || string(m.Payload()) != "online" || !m.Retained() {
			t.Fatalf("got %s %q retained=%v, want t/hall/status \"online\" retained", m.Topic(), m.Payload(), m.Retained())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("retained message not delivered")
	}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr     string
		loopback bool // the error is ErrNotLoopback
	}{
		{"0.0.0.0:0", true},
		{":0", true},
		{"192.0.2.10:1883", true},
		{"[::]:1883", true},
		{"localhost:1883", true}, // a name could resolve anywhere: IPs only
		{"127.0.0.1", false},     // no port
	} {
		b, err := Start(tc.addr, nil)
		if err == nil {
			b.Close()
			t.Errorf("Start(%q): no error", tc.addr)
			continue
		}
		if errors.Is(err, ErrNotLoopback) != tc.loopback {
			t.Errorf("Start(%q) = %v, ErrNotLoopback %v, want %v", tc.addr, err, !tc.loopback, tc.loopback)
		}
	}
}

func TestCloseIsIdempotentAndFreesThePort(t *testing.T) {
	b, err := Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	connect(t, b.URL(), "c1")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	b2, err := Start(b.Addr(), nil)
	if err != nil {
		t.Fatalf("restart on %s: %v", b.Addr(), err)
	}
	b2.Close()
}

func TestDisconnectPublishesWill(t *testing.T) {
	b, err := Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	got := make(chan string, 4)
	sub := connect(t, b.URL(), "sub")
	if tok := sub.Subscribe("w/status", 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	o := paho.NewClientOptions().AddBroker(b.URL()).SetClientID("victim").SetProtocolVersion(4).
		SetAutoReconnect(false).SetWill("w/status", "offline", 1, true)
	victim := paho.NewClient(o)
	if tok := victim.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	if b.Disconnect("nobody") {
		t.Error("Disconnect of an unknown client reported true")
	}
	if !b.Disconnect("victim") {
		t.Fatal("Disconnect(victim) = false")
	}
	select {
	case p := <-got:
		if p != "offline" {
			t.Fatalf("will payload %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("will not delivered")
	}
}

// TestCloseWhileClientsConnect starts a broker and closes it while raw
// clients are connecting, 200 times. Under -race this failed on mochi's own
// TCP listener: its accept loop hands each connection to a goroutine that
// calls ClientsWg.Add only once it runs, so Close's ClientsWg.Wait raced
// that Add (mochi server.go attachClient; listeners/tcp.go Serve). Every
// Close must also return with the port free and no client goroutine left.
func TestCloseWhileClientsConnect(t *testing.T) {
	for i := 0; i < 200; i++ {
		b, err := Start("127.0.0.1:0", nil)
		if err != nil {
			t.Fatal(err)
		}
		addr := b.Addr()
		stop := make(chan struct{})
		dialed := make(chan struct{})
		var signal sync.Once
		var wg sync.WaitGroup
		for c := 0; c < 4; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					conn, err := net.DialTimeout("tcp", addr, time.Second)
					signal.Do(func() { close(dialed) })
					if err != nil {
						return // the listener is closed
					}
					// half a CONNECT, a whole one, or nothing: each takes
					// another path through mochi's attachClient.
					switch i % 3 {
					case 0:
						_, _ = conn.Write([]byte{0x10, 0x0d, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 30, 0, 1, 'x'})
					case 1:
						_, _ = conn.Write([]byte{0x10})
					}
					_ = conn.Close()
				}
			}()
		}
		<-dialed
		done := make(chan error, 1)
		go func() { done <- b.Close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: Close: %v", i, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: Close did not return", i)
		}
		close(stop)
		wg.Wait()
		if l, err := net.Listen("tcp", addr); err != nil {
			t.Fatalf("round %d: port still taken after Close: %v", i, err)
		} else {
			l.Close()
		}
	}
}
