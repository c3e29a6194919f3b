package daemon

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/journal"
	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/mqtt/command"
)

// HeadKey is the key that signs the journal's head messages (issue #12 §5):
// journal.head_key_file (Ed25519) when set, else the HMAC command key when
// commands.auth is hmac, else none (unsigned). `hallguard journal verify
// -anchor` uses it to check the heads it reads.
func HeadKey(cfg *config.Config) (journal.HeadKey, error) {
	switch {
	case cfg.Journal.HeadKeyFile != "":
		k, err := journal.ReadEd25519Key(cfg.Path(cfg.Journal.HeadKeyFile))
		if err != nil {
			return journal.HeadKey{}, fmt.Errorf("journal.head_key_file: %w", err)
		}
		return k, nil
	case cfg.Commands.Auth == "hmac":
		b, err := os.ReadFile(cfg.Path(cfg.Commands.KeyFile))
		if err != nil {
			return journal.HeadKey{}, fmt.Errorf("commands.key_file (signs journal/head): %w", err)
		}
		key, err := command.ParseHMAC(b)
		if err != nil {
			return journal.HeadKey{}, fmt.Errorf("commands.key_file (signs journal/head): %w", err)
		}
		return journal.HMACHeadKey(key), nil
	}
	return journal.HeadKey{}, nil
}

// headLoop publishes the journal's chain head, signed, retained on
// journal/head: at once, then within a second of every change (at most once
// a second: the anchors the center holds stay dense, so a change is
// narrowed to a few records), and at least every journal.head_interval
// with a fresh "at" when nothing changes, on the daemon's clock, until ctx
// ends. Every report also carries the head (mqtt.Options.JournalHead): a
// rewritten or truncated archive no longer matches what the center holds
// (§3.5, issue #12 §5).
func (d *Daemon) headLoop(ctx context.Context, key journal.HeadKey) {
	every := d.cfg.Journal.HeadInterval.D()
	poll := min(time.Second, every)
	var last journal.Head
	var lastAt time.Time
	for first := true; ; first = false {
		h, now := d.store.Head(), d.clk.Now()
		if first || h != last || now.Sub(lastAt) >= every {
			m := journal.HeadMessage{Hall: d.cfg.Hall.ID, Seq: h.Seq, Hash: h.Hash, At: now.UTC()}
			if err := key.Sign(&m); err != nil {
				d.log.Error("journal head not signed", "err", err)
			}
			d.pub.JournalHead(m)
			last, lastAt = h, now
		}
		if clock.Sleep(ctx, d.clk, poll) != nil {
			return
		}
	}
}
