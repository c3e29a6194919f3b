package arc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hallguard/hallguard/devices/clock"
)

// Default timestamp window of a receiver: a message may be up to 40 s
// older and 20 s newer than the receiver's clock (the band DC-09 receivers
// commonly apply, e.g. pysiaalarm's allowed_timeband of (40, 20)).
const (
	DefaultWindowPast   = 40 * time.Second
	DefaultWindowFuture = 20 * time.Second
)

// Received is what a receiver made of one message.
type Received struct {
	Remote string
	Frame  Frame
	// Answer is ACK, NAK, DUH, or "" when nothing was sent back (a frame
	// that fails its CRC or length is not answered: the sender retries).
	Answer string
	// Event is the decoded event of an ADM-CID or SIA-DCS message.
	Event *Event
	Err   error
	At    time.Time
}

// String is the message for people: `hallguard arc listen` prints it.
func (r Received) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-21s", r.At.UTC().Format("15:04:05.000"), r.Remote)
	if r.Err != nil && r.Frame.ID == "" {
		fmt.Fprintf(&b, " refused: %v", r.Err)
		return b.String()
	}
	enc := ""
	if r.Frame.Encrypted {
		enc = " (AES)"
	}
	fmt.Fprintf(&b, " %s%s seq %04d account %s", r.Frame.ID, enc, r.Frame.Seq, r.Frame.Account)
	if r.Event != nil {
		fmt.Fprintf(&b, "  %s", r.Event)
	}
	if !r.Frame.Time.IsZero() {
		fmt.Fprintf(&b, "  sent %s", r.Frame.Time.UTC().Format(TimeLayout))
	}
	fmt.Fprintf(&b, "  -> %s", r.Answer)
	if r.Err != nil {
		fmt.Fprintf(&b, " (%v)", r.Err)
	}
	return b.String()
}

// Receiver is a small reference DC-09 receiver: it decodes and, with a
// key, decrypts each message, checks CRC, length and the timestamp window,
// and answers ACK, NAK (timestamp out of window, or undecryptable) or DUH
// (a message it does not understand).
type Receiver struct {
	// Key decrypts "*" messages; nil receives clear messages only.
	Key []byte
	// WindowPast and WindowFuture bound a message's timestamp against the
	// receiver's clock (defaults DefaultWindowPast, DefaultWindowFuture).
	WindowPast, WindowFuture time.Duration
	Clock                    clock.Clock
	// Handle, if set, sees every message (it must not block for long).
	Handle func(Received)

	silent atomic.Bool
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

// SetSilent makes the receiver read and drop every message without an
// answer, like a receiver that hangs (tests and `arc listen -silent`).
func (r *Receiver) SetSilent(on bool) { r.silent.Store(on) }

func (r *Receiver) now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock.Now()
}

// Answer handles one message and returns the reply to send (nil for none).
func (r *Receiver) Answer(raw []byte, remote string) ([]byte, Received) {
	now := r.now()
	rec := Received{Remote: remote, At: now}
	f, err := Decode(raw, r.Key)
	rec.Frame = f
	reply := Frame{Seq: f.Seq, Receiver: f.Receiver, Line: f.Line, Account: f.Account}
	var key []byte
	switch {
	case errors.Is(err, ErrCRC), errors.Is(err, ErrLength), errors.Is(err, ErrFormat):
		rec.Err = err
		return nil, rec
	case errors.Is(err, ErrNoKey), errors.Is(err, ErrDecrypt):
		rec.Err = err
		reply.ID = IDNak
	case err != nil:
		rec.Err = err
		return nil, rec
	default:
		past, future := r.WindowPast, r.WindowFuture
		if past == 0 {
			past = DefaultWindowPast
		}
		if future == 0 {
			future = DefaultWindowFuture
		}
		switch {
		case f.Encrypted && f.Time.IsZero():
			rec.Err = errors.New("encrypted message without a timestamp")
			reply.ID = IDNak
		case !f.Time.IsZero() && (f.Time.Before(now.Add(-past)) || f.Time.After(now.Add(future))):
			rec.Err = fmt.Errorf("timestamp %s out of window (receiver %s)", f.Time.UTC().Format(TimeLayout), now.UTC().Format(TimeLayout))
			reply.ID = IDNak
		default:
			switch f.ID {
			case IDNull:
				reply.ID = IDAck
			case IDContactID, IDSIA:
				ev, err := ParseData(f.ID, f.Data)
				if err != nil {
					rec.Err = err
					reply.ID = IDDuh
				} else {
					rec.Event = &ev
					reply.ID = IDAck
				}
			default:
				rec.Err = fmt.Errorf("unknown message %q", f.ID)
				reply.ID = IDDuh
			}
		}
	}
	if reply.ID == IDNak {
		// A NAK is clear, sequence 0000, and carries the receiver's time
		// so the sender can correct its own.
		reply.Seq = 0
		reply.Time = now
	} else if f.Encrypted {
		key = r.Key
		reply.Time = now
	}
	out, err := reply.Encode(key)
	if err != nil {
		rec.Err = err
		return nil, rec
	}
	rec.Answer = reply.ID
	return out, rec
}

// ParseData reads the event in a message's data block: Contact ID
// "#acct|QEEE GG ZZZ" or SIA DC-03 "#acct|Nri<area>/<code><zone>[|A<text>]".
func ParseData(id, data string) (Event, error) {
	_, rest, ok := strings.Cut(data, "|")
	if !ok {
		return Event{}, fmt.Errorf("arc: data %q: no '|'", data)
	}
	ev := Event{Format: id}
	if id == IDContactID {
		if len(rest) != 11 || rest[4] != ' ' || rest[7] != ' ' {
			return ev, fmt.Errorf("arc: Contact ID %q: want QEEE GG ZZZ", rest)
		}
		q, e1 := strconv.Atoi(rest[:1])
		code, e2 := strconv.Atoi(rest[1:4])
		area, e3 := strconv.Atoi(rest[5:7])
		zone, e4 := strconv.Atoi(rest[8:11])
		if errors.Join(e1, e2, e3, e4) != nil || (q != 1 && q != 3 && q != 6) {
			return ev, fmt.Errorf("arc: Contact ID %q: not digits or bad qualifier", rest)
		}
		ev.Qualifier, ev.Code, ev.Area, ev.Zone = q, code, area, zone
		return ev, nil
	}
	body, text, _ := strings.Cut(rest, "|A")
	ev.Text = text
	if !strings.HasPrefix(body, "N") {
		return ev, fmt.Errorf("arc: SIA data %q", rest)
	}
	ev.Qualifier = QualNew
	if i := strings.IndexByte(body, '/'); i >= 0 {
		if a, err := strconv.Atoi(strings.TrimPrefix(body[1:i], "ri")); err == nil {
			ev.Area = a
		}
		body = body[i+1:]
	} else {
		body = body[1:]
	}
	if len(body) >= 2 {
		if body[1] == 'R' {
			ev.Qualifier = QualRestore
		}
		ev.Zone, _ = strconv.Atoi(body[2:])
	}
	return ev, nil
}

// ServeTCP answers messages on every connection ln accepts until ctx is
// done; it closes ln and the connections on return.
func (r *Receiver) ServeTCP(ctx context.Context, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		ln.Close()
		r.CloseConnections()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("arc: receiver: %w", err)
		}
		r.mu.Lock()
		if r.conns == nil {
			r.conns = map[net.Conn]struct{}{}
		}
		r.conns[c] = struct{}{}
		r.mu.Unlock()
		go r.serveConn(c)
	}
}

// CloseConnections drops every open connection (a receiver restart, for
// tests), leaving the listener open.
func (r *Receiver) CloseConnections() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		c.Close()
	}
}

func (r *Receiver) serveConn(c net.Conn) {
	defer func() {
		c.Close()
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
	}()
	br := bufio.NewReaderSize(c, MaxFrame+2)
	for {
		raw, err := readFrame(br)
		if err != nil {
			return
		}
		if reply := r.serve(raw, c.RemoteAddr().String()); reply != nil {
			if _, err := c.Write(reply); err != nil {
				return
			}
		}
	}
}

// serve answers one message from TCP or UDP and shows it to Handle; nil
// when nothing is sent back. A silent receiver drops it unseen.
func (r *Receiver) serve(raw []byte, remote string) []byte {
	if r.silent.Load() {
		return nil
	}
	reply, rec := r.Answer(raw, remote)
	if r.Handle != nil {
		r.Handle(rec)
	}
	return reply
}

// ServeUDP answers each datagram on pc until ctx is done.
func (r *Receiver) ServeUDP(ctx context.Context, pc net.PacketConn) error {
	go func() {
		<-ctx.Done()
		pc.Close()
	}()
	buf := make([]byte, MaxFrame+2)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("arc: receiver: %w", err)
		}
		if reply := r.serve(buf[:n], addr.String()); reply != nil {
			_, _ = pc.WriteTo(reply, addr)
		}
	}
}

// readFrame reads up to and including the CR that ends a frame, skipping
// anything before its LF, and refuses one longer than MaxFrame.
func readFrame(br *bufio.Reader) ([]byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return nil, err
		}
		if b == '\n' {
			break
		}
	}
	var out []byte
	for {
		b, err := br.ReadByte()
		if err != nil {
			return nil, err
		}
		if b == '\r' {
			return out, nil
		}
		if b == '\n' { // a new frame starts: drop the broken one
			out = out[:0]
			continue
		}
		if len(out) >= MaxFrame {
			return nil, fmt.Errorf("arc: frame longer than %d bytes", MaxFrame)
		}
		out = append(out, b)
	}
}
