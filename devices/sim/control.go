package sim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// The control socket speaks one line per request and one line per answer:
//
//	press INPUT | release INPUT | pulse INPUT [DURATION] | list
//	-> "ok ..." or "error: reason"
//
// It is a unix socket with mode 0600 in the state directory, so only the
// daemon's own user (and root) can drive the simulated hall.

// MaxPulse bounds the pulse width a client may ask for.
const MaxPulse = 10 * time.Second

// Listen creates the control socket at path, mode 0600 from its creation
// (under a umask, so there is no moment at which others could connect). A
// stale socket file left by a crash is replaced. Call it before announcing
// readiness, then Serve the listener: once Listen returns, clients can
// connect.
func Listen(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("sim: control socket: %w", err)
	}
	l, err := listenPrivate(path)
	if err != nil {
		return nil, fmt.Errorf("sim: control socket: %w", err)
	}
	return l, nil
}

// Serve answers requests on l (from Listen) until ctx is done, then closes
// l and removes its socket file. It returns once every connection it took
// is closed and answered: a client still connected when ctx ends is
// disconnected.
func (b *Backend) Serve(ctx context.Context, l net.Listener) error {
	var conns sync.WaitGroup
	defer conns.Wait()
	connCtx, closeConns := context.WithCancel(ctx)
	defer closeConns() // on an Accept error too
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	defer l.Close()
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sim: control socket: %w", err)
		}
		conns.Go(func() {
			stop := context.AfterFunc(connCtx, func() { conn.Close() })
			defer stop()
			b.serveConn(conn)
		})
	}
}

func (b *Backend) serveConn(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(MaxPulse + 5*time.Second))
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		fmt.Fprintln(conn, b.Handle(sc.Text()))
	}
}

// Handle answers one control request.
func (b *Backend) Handle(line string) string {
	f := strings.Fields(line)
	if len(f) == 0 {
		return "error: empty request (want press|release|pulse INPUT, or list)"
	}
	if f[0] == "list" {
		return "ok inputs=" + strings.Join(b.InputIDs(), ",") + " outputs=" + strings.Join(b.OutputIDs(), ",")
	}
	if len(f) < 2 {
		return fmt.Sprintf("error: %s needs an input id", f[0])
	}
	in := b.Input(f[1])
	if in == nil {
		return fmt.Sprintf("error: no input %q (have %s)", f[1], strings.Join(b.InputIDs(), ", "))
	}
	switch f[0] {
	case "press":
		in.Press()
	case "release":
		in.Release()
	case "pulse":
		width := 100 * time.Millisecond
		if len(f) > 2 {
			d, err := time.ParseDuration(f[2])
			if err != nil || d <= 0 || d > MaxPulse {
				return fmt.Sprintf("error: bad pulse width %q (want e.g. 100ms, at most %s)", f[2], MaxPulse)
			}
			width = d
		}
		in.Pulse(width)
	default:
		return fmt.Sprintf("error: unknown request %q (want press, release, pulse or list)", f[0])
	}
	return "ok " + f[0] + " " + f[1]
}

// Send makes one request to the control socket at path and returns the
// answer; an "error: ..." answer becomes an error.
func Send(path, request string) (string, error) {
	conn, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return "", fmt.Errorf("sim: is the daemon running with backend sim? %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(MaxPulse + 5*time.Second))
	if _, err := fmt.Fprintln(conn, request); err != nil {
		return "", fmt.Errorf("sim: %w", err)
	}
	answer, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("sim: no answer: %w", err)
	}
	answer = strings.TrimSpace(answer)
	if strings.HasPrefix(answer, "error: ") {
		return "", errors.New(strings.TrimPrefix(answer, "error: "))
	}
	return answer, nil
}
