package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hallguard/hallguard/arc"
	"github.com/hallguard/hallguard/daemon"
)

// cmdARC is `hallguard arc test|listen`: the alarm receiving centre link's
// two tools.
func cmdARC(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: hallguard arc test [-config F] [-receiver NAME] | listen [-listen ADDR] [-udp ADDR] [-key-file F] [-past D] [-future D] [-silent]")
		return exitConfig
	}
	switch args[0] {
	case "test":
		return arcTest(args[1:], stdout, stderr)
	case "listen":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return arcListen(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "hallguard arc: unknown subcommand %q (want test or listen)\n", args[0])
	return exitConfig
}

// arcTest sends a manual test (Contact ID 601) to each configured receiver,
// or the one named, and prints its answer and the round trip. Exit 1 if a
// receiver did not ACK.
func arcTest(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("arc test", stderr)
	only := fs.String("receiver", "", "test only this receiver (default: every one)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return exitConfig
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return exitConfig
	}
	if !cfg.ARC.Enabled() {
		fmt.Fprintf(stderr, "hallguard arc test: %s has no arc section\n", *path)
		return exitConfig
	}
	o, err := daemon.ARCOptions(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "hallguard arc test:", err)
		return exitConfig
	}
	// The test is not queued: it proves the path now or says it cannot.
	o.Queue = nopQueue{}
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	t, err := arc.New(o)
	if err != nil {
		fmt.Fprintln(stderr, "hallguard arc test:", err)
		return exitConfig
	}
	code, found := exitOK, false
	for _, r := range cfg.ARC.Receivers {
		if *only != "" && r.Name != *only {
			continue
		}
		found = true
		f, rtt, err := t.Probe(r.Name)
		if err != nil {
			fmt.Fprintf(stdout, "%-10s %s %-21s no answer: %v\n", r.Name, r.Protocol, r.Address, err)
			code = exitFail
			continue
		}
		enc := ""
		if f.Encrypted {
			enc = " (AES)"
		}
		fmt.Fprintf(stdout, "%-10s %s %-21s %s seq %04d%s  round trip %s\n", r.Name, r.Protocol, r.Address, f.ID, f.Seq, enc, rtt.Round(10*time.Microsecond))
		if f.ID != arc.IDAck {
			code = exitFail
		}
	}
	if !found {
		fmt.Fprintf(stderr, "hallguard arc test: no receiver %q\n", *only)
		return exitConfig
	}
	return code
}

// arcListen is a small reference receiver: it decrypts, checks CRC,
// length and the timestamp window, ACKs or NAKs, and prints each message.
func arcListen(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hallguard arc listen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tcpAddr := fs.String("listen", "127.0.0.1:12000", "TCP address to listen on (empty: none)")
	udpAddr := fs.String("udp", "", "UDP address to listen on (empty: none)")
	keyFile := fs.String("key-file", "", "AES key (hex) for encrypted messages; the file must be private (0600)")
	past := fs.Duration("past", arc.DefaultWindowPast, "oldest message timestamp accepted, before the receiver's time")
	future := fs.Duration("future", arc.DefaultWindowFuture, "newest message timestamp accepted, after the receiver's time")
	silent := fs.Bool("silent", false, "read messages and never answer (to try a transmitter's failover)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return exitConfig
	}
	r := &arc.Receiver{WindowPast: *past, WindowFuture: *future}
	if *keyFile != "" {
		k, err := arc.LoadKey(*keyFile)
		if err != nil {
			fmt.Fprintln(stderr, "hallguard arc listen:", err)
			return exitConfig
		}
		r.Key = k
	}
	r.SetSilent(*silent)
	var mu sync.Mutex
	r.Handle = func(m arc.Received) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(stdout, m)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	if *tcpAddr != "" {
		ln, err := net.Listen("tcp", *tcpAddr)
		if err != nil {
			fmt.Fprintln(stderr, "hallguard arc listen:", err)
			return exitFail
		}
		fmt.Fprintf(stderr, "listening on tcp %s\n", ln.Addr())
		wg.Go(func() { errs <- r.ServeTCP(ctx, ln) })
	}
	if *udpAddr != "" {
		pc, err := net.ListenPacket("udp", *udpAddr)
		if err != nil {
			fmt.Fprintln(stderr, "hallguard arc listen:", err)
			return exitFail
		}
		fmt.Fprintf(stderr, "listening on udp %s\n", pc.LocalAddr())
		wg.Go(func() { errs <- r.ServeUDP(ctx, pc) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			fmt.Fprintln(stderr, "hallguard arc listen:", err)
			return exitFail
		}
	}
	return exitOK
}

// nopQueue keeps nothing: `arc test` sends one test and queues nothing.
type nopQueue struct{}

func (nopQueue) Push(arc.Event) (uint64, error) { return 0, nil }
func (nopQueue) Pending() ([]arc.Event, error)  { return nil, nil }
func (nopQueue) Retire(uint64) error            { return nil }
func (nopQueue) Len() int                       { return 0 }
