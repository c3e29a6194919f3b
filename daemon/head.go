package daemon

import (
	"context"
	"fmt"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/journal"
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
		key, err := ReadKey(cfg.Path(cfg.Commands.KeyFile))
		if err != nil {
			return journal.HeadKey{}, fmt.Errorf("commands.key_file (signs journal/head): %w", err)
		}
		return journal.HMACHeadKey(key), nil
	}
	return journal.HeadKey{}, nil
}

// headLoop publishes the journal's chain head, signed, retained on
// journal/head, at once and then every journal.head_interval (on the
// daemon's clock), until ctx ends. Every report also carries the head
// (mqtt.Options.JournalHead), so the center holds an anchor per report and
// one per interval: a rewritten or truncated archive no longer matches
// what the center holds (§3.5).
func (d *Daemon) headLoop(ctx context.Context, key journal.HeadKey) {
	tick := make(chan struct{}, 1)
	for {
		h := d.store.Head()
		m := journal.HeadMessage{Hall: d.cfg.Hall.ID, Seq: h.Seq, Hash: h.Hash, At: d.clk.Now().UTC()}
		if err := key.Sign(&m); err != nil {
			d.log.Error("journal head not signed", "err", err)
		}
		d.pub.JournalHead(m)
		t := d.clk.AfterFunc(d.cfg.Journal.HeadInterval.D(), func() {
			select {
			case tick <- struct{}{}:
			default:
			}
		})
		select {
		case <-tick:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}
