// Command hallguard is the service hall's emergency daemon and its tools.
// It has thirteen commands (and help), one line each:
//
//	hallguard run      run the daemon
//	hallguard check    validate a config and its playbooks, print every error
//	hallguard sim      press|release|pulse INPUT [WIDTH] | list: drive the simulated hall
//	hallguard watch    print what the daemon sends over MQTT
//	hallguard journal  verify|list|show SEQ|export: the hash-chained journal
//	hallguard cmd      VERB [flags]: sign and send a command, print the reply
//	hallguard pin      read a PIN on standard input, print its hash
//	hallguard keygen   -type ed25519|hmac -out FILE: make a command key
//	hallguard drill    start|stop|evaluate: drills, through signed commands
//	hallguard review   INCIDENT --cause ..: file an incident's post-incident review
//	hallguard report   INCIDENT [--format md|json]: the incident report from the journal
//	hallguard arc      test | listen: the SIA DC-09 link to the alarm receiving centre
//	hallguard version  print the version
//
// The config is -config, else $HALLGUARD_CONFIG, else
// /etc/hallguard/hallguard.yaml if it exists, else configs/demo.yaml.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hallguard/hallguard/daemon"
	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/devices/sim"
	"github.com/hallguard/hallguard/mqtt"
)

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1 // runtime failure
	exitConfig = 2 // usage or configuration error
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: hallguard COMMAND [flags]

commands:
  run      run the daemon
  check    validate a config and its playbooks; print every error
  sim      drive the simulated hall: press|release|pulse INPUT [WIDTH], or list
  watch    subscribe to the hall's MQTT topics and print them readably
  journal  verify|list|show SEQ|export: the hash-chained journal (§3.5 archive)
  cmd      sign and send a command (ack, resolve, false_alarm, step, trigger, report); print the reply
  pin      read a PIN on standard input, print its hash for the console config
  keygen   -type ed25519|hmac -out FILE: make a command key (ed25519: FILE + FILE.pub)
  drill    start PLAYBOOK --participants ..|stop|evaluate DRILL --comment ..: drills (§1.3)
  review   INCIDENT --cause .. --course .. --handling .. --problems .. [--actions ..]: file the §3.4 review
  report   INCIDENT [--format md|json] [--lang zh|en|both]: the full incident report from the journal
  arc      test [-receiver NAME]: send a 601 to the ARC receivers, print the answer and round trip;
           listen [-listen ADDR] [-udp ADDR] [-key-file F]: a reference SIA DC-09 receiver
  version  print the version

Every command takes -config FILE (default: $HALLGUARD_CONFIG, else
/etc/hallguard/hallguard.yaml if present, else configs/demo.yaml).
`)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitConfig
	}
	cmd, args := args[0], args[1:]
	if c, ok := commands()[cmd]; ok {
		return c(args, stdout, stderr)
	}
	switch cmd {
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "hallguard", daemon.Version)
		return exitOK
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "hallguard: unknown command %q\n", cmd)
	usage(stderr)
	return exitConfig
}

// commands maps each command but version and help to its function.
func commands() map[string]func(args []string, stdout, stderr io.Writer) int {
	return map[string]func([]string, io.Writer, io.Writer) int{
		"run":     func(args []string, _, stderr io.Writer) int { return cmdRun(args, stderr) },
		"check":   cmdCheck,
		"sim":     cmdSim,
		"watch":   cmdWatch,
		"cmd":     cmdCmd,
		"drill":   cmdDrill,
		"review":  cmdReview,
		"report":  cmdReport,
		"journal": cmdJournal,
		"arc":     cmdARC,
		"pin":     func(args []string, stdout, stderr io.Writer) int { return cmdPin(args, os.Stdin, stdout, stderr) },
		"keygen":  cmdKeygen,
	}
}

func defaultConfig() string {
	if p := os.Getenv("HALLGUARD_CONFIG"); p != "" {
		return p
	}
	if _, err := os.Stat("/etc/hallguard/hallguard.yaml"); err == nil {
		return "/etc/hallguard/hallguard.yaml"
	}
	return "configs/demo.yaml"
}

func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("hallguard "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfig(), "config file")
	return fs, path
}

// setUsage makes fs's usage the line, then its flags, on stderr.
func setUsage(fs *flag.FlagSet, line string, stderr io.Writer) {
	fs.Usage = func() {
		fmt.Fprintln(stderr, line)
		fs.PrintDefaults()
	}
}

// leadingArg takes the argument that comes before a command's flags (a
// verb, an incident, a drill action). When there is none it prints fs's
// usage and returns false, for exitConfig.
func leadingArg(fs *flag.FlagSet, args []string) (lead string, rest []string, ok bool) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs.Usage()
		return "", nil, false
	}
	return args[0], args[1:], true
}

// parseLeading takes the leading argument (leadingArg) and parses the
// flags after it; false means exitConfig.
func parseLeading(fs *flag.FlagSet, args []string) (string, bool) {
	lead, rest, ok := leadingArg(fs, args)
	if !ok {
		return "", false
	}
	return lead, fs.Parse(rest) == nil
}

func loadConfig(path string, stderr io.Writer) (*config.Config, bool) {
	cfg, err := config.Load(path)
	if err != nil {
		var es config.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				fmt.Fprintln(stderr, e.Error())
			}
			fmt.Fprintf(stderr, "%s: %d error(s)\n", path, len(es))
		} else {
			fmt.Fprintln(stderr, err)
		}
		return nil, false
	}
	return cfg, true
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("check", stderr)
	strict := fs.Bool("strict", false, "treat warnings (careless but valid settings, such as an unsupervised alarm input) as errors")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if fs.NArg() == 1 { // hallguard check FILE
		*path = fs.Arg(0)
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return exitConfig
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, w.Error())
	}
	if *strict && len(cfg.Warnings) > 0 {
		fmt.Fprintf(stderr, "%s: %d error(s) (-strict: warnings are errors)\n", *path, len(cfg.Warnings))
		return exitConfig
	}
	warned := ""
	if n := len(cfg.Warnings); n > 0 {
		warned = fmt.Sprintf(", %d warning(s)", n)
	}
	fmt.Fprintf(stdout, "%s: ok: hall %s, backend %s, %d inputs, %d outputs, %d playbooks%s\n",
		*path, cfg.Hall.ID, cfg.Backend, len(cfg.Inputs), len(cfg.Outputs), len(cfg.Playbooks), warned)
	for _, p := range cfg.Playbooks {
		for _, o := range p.Outputs {
			if cfg.Output(o.Output) == nil {
				fmt.Fprintf(stdout, "note: %s: playbook %s drives output %q, which this hall does not define; it is skipped\n", p.File, p.ID, o.Output)
			}
		}
	}
	return exitOK
}

func cmdRun(args []string, stderr io.Writer) int {
	fs, path := newFlags("run", stderr)
	stateDir := fs.String("state-dir", "", "override state_dir")
	httpListen := fs.String("http-listen", "", "override http.listen (/metrics, /healthz)")
	localListen := fs.String("local-listen", "", "override http.local_listen (console, /api/*, reload): loopback unless http.local_tls is complete")
	enableReload := fs.Bool("enable-reload", false, "serve POST /-/reload on the local listener (SIGHUP always reloads)")
	mqttListen := fs.String("mqtt-listen", "", "override mqtt.listen (embedded broker)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	outbox := fs.String("outbox", "durable", "durable (reports on disk before they are sent), or memory: for measuring the durable path's cost only, a crash loses reports")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "hallguard: -log-level: %v\n", err)
		return exitConfig
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return exitConfig
	}
	adjust := func(c *config.Config) { // the command line overrides the file, on reload too
		if *stateDir != "" {
			c.StateDir = *stateDir
		}
		if *httpListen != "" {
			c.HTTP.Listen = *httpListen
		}
		if *mqttListen != "" {
			c.MQTT.Listen = *mqttListen
		}
		if *localListen != "" {
			c.HTTP.LocalListen = *localListen
		}
	}
	adjust(cfg)
	// The override is held to the file's rule (issue #12 §2).
	if host, _, err := net.SplitHostPort(cfg.HTTP.LocalListen); err != nil || (!config.IsLoopback(host) && !cfg.HTTP.LocalTLS.Complete()) {
		fmt.Fprintf(stderr, "hallguard: -local-listen %q: the console, /api/* and reload need a loopback host:port, or http.local_tls with cert_file, key_file and client_ca_file\n", cfg.HTTP.LocalListen)
		return exitConfig
	}
	if *outbox != "durable" && *outbox != "memory" {
		fmt.Fprintf(stderr, "hallguard: -outbox: want durable or memory, not %q\n", *outbox)
		return exitConfig
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP reloads the config; a bad one is rejected and the old runs on.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	running := make(chan *daemon.Daemon, 1)
	go func() {
		var d *daemon.Daemon
		for {
			select {
			case d = <-running:
			case <-hup:
				if d == nil {
					log.Warn("SIGHUP before the daemon was ready: ignored")
					continue
				}
				_ = d.Reload() // logged, journalled and counted by the daemon
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := daemon.Run(ctx, cfg, daemon.Options{Logger: log, Adjust: adjust, EnableReload: *enableReload, MemoryOutbox: *outbox == "memory", Ready: func(d *daemon.Daemon) { running <- d }}); err != nil {
		log.Error("hallguard failed", "err", err)
		return exitFail
	}
	return exitOK
}

func cmdSim(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("sim", stderr)
	socket := fs.String("socket", "", "sim control socket (default: sim.sock in the config's state_dir)")
	setUsage(fs, "usage: hallguard sim [-config FILE] press|release|pulse INPUT [WIDTH] | list", stderr)
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitConfig
	}
	if *socket == "" {
		cfg, ok := loadConfig(*path, stderr)
		if !ok {
			return exitConfig
		}
		if cfg.Backend != "sim" {
			fmt.Fprintf(stderr, "hallguard sim: %s uses backend %s, not sim\n", *path, cfg.Backend)
			return exitConfig
		}
		*socket = daemon.SimSocket(cfg)
	}
	answer, err := sim.Send(*socket, strings.Join(fs.Args(), " "))
	if err != nil {
		fmt.Fprintln(stderr, "hallguard sim:", err)
		return exitFail
	}
	fmt.Fprintln(stdout, answer)
	return exitOK
}

// brokerOr is the broker URL given, or else the config's (the embedded
// broker's listen address).
func brokerOr(cfg *config.Config, given string) string {
	switch {
	case given != "":
		return given
	case cfg.MQTT.Broker == "embedded":
		return "tcp://" + cfg.MQTT.Listen
	}
	return cfg.MQTT.Broker
}

// rootOr is the topic root given, or else the config's
// <topic_prefix>/<hall id>.
func rootOr(cfg *config.Config, given string) string {
	if given != "" {
		return given
	}
	return cfg.MQTT.TopicPrefix + "/" + cfg.Hall.ID
}

func cmdWatch(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("watch", stderr)
	brokerURL := fs.String("broker", "", "broker URL (default: from the config; the embedded broker's listen address)")
	root := fs.String("topic", "", "topic root (default: <topic_prefix>/<hall id> from the config)")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	if *brokerURL == "" || *root == "" {
		cfg, ok := loadConfig(*path, stderr)
		if !ok {
			return exitConfig
		}
		*brokerURL, *root = brokerOr(cfg, *brokerURL), rootOr(cfg, *root)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	shown := *brokerURL
	if u, err := url.Parse(shown); err == nil {
		shown = u.Redacted() // a password given in the URL is not printed
	}
	fmt.Fprintf(stderr, "watching %s/# on %s (Ctrl-C to stop)\n", *root, shown)
	if err := mqtt.Watch(ctx, *brokerURL, *root, stdout); err != nil && ctx.Err() == nil {
		fmt.Fprintln(stderr, "hallguard watch:", err)
		return exitFail
	}
	return exitOK
}
