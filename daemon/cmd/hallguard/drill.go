package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hallguard/hallguard/daemon"
	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/mqtt"
	"github.com/hallguard/hallguard/mqtt/command"
)

// cmdDrill runs drills (§1.3) through signed drill commands, as `hallguard
// cmd` sends them:
//
//	hallguard drill start PLAYBOOK [--variant V] --participants "Chen, Liu" [--by NAME]
//	hallguard drill stop [DRILL] [--by NAME]
//	hallguard drill evaluate DRILL --comment "..." [--by NAME]
//	hallguard drill walk_start --inputs "ID or ZONE, ..." [--by NAME]   (walk test of the named inputs; all others stay live)
//	hallguard drill walk_stop [--by NAME]
//	hallguard drill test INPUT [--by NAME]               (the input's playbook as a drill from that input)
//
// A drill's id is its incident id (the reply's "incident"). The record is
// published on drills/<id> and journalled when the drill ends.
func cmdDrill(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("drill", stderr)
	send := newSendFlags(fs, "command key file (default: the config's commands.key_file)")
	by := fs.String("by", os.Getenv("USER"), "who is acting")
	variant := fs.String("variant", "", "playbook variant (start)")
	participants := fs.String("participants", "", "who takes part, separated by , or ; (start; required)")
	comment := fs.String("comment", "", "evaluation comment (evaluate; required)")
	inputs := fs.String("inputs", "", "inputs or zones the walk test covers, separated by , or ; (walk_start; required)")
	setUsage(fs, "usage: hallguard drill start PLAYBOOK [--variant V] --participants \"A, B\" | stop [DRILL] | evaluate DRILL --comment TEXT | walk_start --inputs \"ID, ZONE\" | walk_stop | test INPUT", stderr)
	action, rest, ok := leadingArg(fs, args)
	if !ok {
		return exitConfig
	}
	var arg string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		arg, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return exitConfig
	}
	if arg == "" && fs.NArg() > 0 {
		arg = fs.Arg(0)
	}
	m := command.Message{By: *by, Action: action}
	verb := "drill"
	switch action {
	case "start":
		m.Playbook, m.Variant = arg, *variant
		m.Participants = splitList(*participants)
		if m.Playbook == "" || len(m.Participants) == 0 {
			fs.Usage()
			return exitConfig
		}
	case "stop":
		m.Drill = arg
	case "walk_start":
		m.Inputs = splitList(*inputs)
		if len(m.Inputs) == 0 {
			fs.Usage()
			return exitConfig
		}
	case "walk_stop":
	case "test":
		if arg == "" {
			fs.Usage()
			return exitConfig
		}
		m.Action, m.Input, verb = "", arg, "test"
		m.Participants = splitList(*participants)
	case "evaluate":
		m.Drill, m.Reason = arg, *comment
		if m.Drill == "" || strings.TrimSpace(m.Reason) == "" {
			fs.Usage()
			return exitConfig
		}
	default:
		fs.Usage()
		return exitConfig
	}
	if m.By == "" {
		fmt.Fprintln(stderr, "hallguard drill: --by is required")
		return exitConfig
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return exitConfig
	}
	return sendSigned(cfg, verb, m, send, stdout, stderr)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// sendFlags are the flags of the subcommands that sign and send a command
// (cmd, drill, review).
type sendFlags struct {
	key, broker, root *string
	timeout           *time.Duration
}

func newSendFlags(fs *flag.FlagSet, keyUsage string) sendFlags {
	return sendFlags{
		key:     fs.String("key", "", keyUsage),
		broker:  fs.String("broker", "", "broker URL (default: from the config)"),
		root:    fs.String("topic", "", "topic root (default: <topic_prefix>/<hall id>)"),
		timeout: fs.Duration("timeout", 10*time.Second, "how long to wait for the reply"),
	}
}

// sendSigned signs m for verb (as `hallguard cmd` does), sends it as f
// says and prints the reply; the exit code is 0 only for an "ok" reply.
func sendSigned(cfg *config.Config, verb string, m command.Message, f sendFlags, stdout, stderr io.Writer) int {
	name := "hallguard " + verb + ":"
	keyFile, timeout := *f.key, *f.timeout
	brokerURL, root := brokerOr(cfg, *f.broker), rootOr(cfg, *f.root)
	if m.ID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		m.ID = "cmd-" + hex.EncodeToString(b[:])
	}
	if keyFile == "" && cfg.Commands.Auth == "hmac" {
		keyFile = cfg.Path(cfg.Commands.KeyFile)
	}
	if keyFile == "" && cfg.Commands.Auth == "ed25519" {
		fmt.Fprintln(stderr, name, "this hall checks Ed25519 signatures: give the center's private key with -key FILE")
		return exitConfig
	}
	var payload []byte
	var err error
	if keyFile != "" {
		signer, kerr := daemon.ReadSigner(keyFile)
		if kerr != nil {
			fmt.Fprintln(stderr, name, kerr)
			return exitConfig
		}
		// Signed for this hall and the full topic (mqtt/command).
		payload, err = command.Sign(signer, cfg.Hall.ID, root+"/cmd/"+verb, m, time.Now())
	} else {
		m.TS = time.Now().UTC()
		payload, err = json.Marshal(m)
	}
	if err != nil {
		fmt.Fprintln(stderr, name, err)
		return exitFail
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	reply, err := mqtt.SendCommand(ctx, brokerURL, root, verb, m.ID, payload)
	if err != nil {
		fmt.Fprintln(stderr, name, err)
		return exitFail
	}
	fmt.Fprintln(stdout, string(reply))
	var r daemon.Reply
	if json.Unmarshal(reply, &r) != nil || r.Result != "ok" {
		return exitFail
	}
	return exitOK
}
