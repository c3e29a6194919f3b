package daemon

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/mqtt"
	"github.com/hallguard/hallguard/mqtt/broker"
)

// BrokerUser is the daemon's user name on the embedded broker.
const BrokerUser = "hallguard"

// BrokerPasswordFile is the embedded broker's password file: one
// user:password per line, mode 0600. The daemon adds its own user with a
// random password on first start; an installer may add users (the center's
// bridge, Home Assistant) and restart.
func BrokerPasswordFile(cfg *config.Config) string {
	return filepath.Join(cfg.StateDir, "broker.passwd")
}

// brokerAuth makes the daemon's credential when it has none yet and returns
// the embedded broker's authentication and ACL: only the daemon writes the
// hall's topics and uses its client id; others (users of the password file,
// and anonymous local clients such as `hallguard watch`) read, and write
// only cmd/<verb> (not cmd/reply), the center's acknowledgement topic and
// Home Assistant's own status topic. Commands are signed (§3.2: no false
// alarm), so writing cmd/ gives nothing without the key. (issue #12 §4)
//
// A password file group or others can read stops the start (a bad config
// is refused). One that cannot be made or read (a disk gone read-only or
// full, something else at its path) does not: the daemon then runs with a
// password of this run only, raises the trouble broker_credentials, and
// other users of the file cannot log in (a missed alarm is the worst bug;
// the journal degrades to memory the same way).
func (d *Daemon) brokerAuth(cfg *config.Config) (broker.Auth, string, error) {
	path := BrokerPasswordFile(cfg)
	password, err := broker.EnsurePasswordFile(path, BrokerUser)
	var users map[string]string
	if err == nil {
		users, err = broker.LoadPasswordFile(path)
	}
	switch {
	case errors.Is(err, broker.ErrInsecureFile):
		return broker.Auth{}, "", err
	case err != nil:
		var b [32]byte
		if _, rerr := rand.Read(b[:]); rerr != nil {
			return broker.Auth{}, "", fmt.Errorf("daemon: broker password: %w", rerr)
		}
		password = base64.RawURLEncoding.EncodeToString(b[:])
		users = map[string]string{BrokerUser: password}
		d.daemonCondition(engine.ClassTrouble, "broker_credentials", true,
			fmt.Sprintf("embedded broker password file unusable, running with a password of this run only: %v", err))
	}
	t := mqtt.NewTopics(cfg.MQTT.TopicPrefix, cfg.Hall.ID)
	a := broker.Auth{
		Users:       users,
		Daemon:      BrokerUser,
		ReservedIDs: []string{cfg.MQTT.ClientID},
		OthersWrite: []string{t.Command("+")},
		OthersDeny:  []string{t.Command("reply")},
		Anonymous:   true,
	}
	if cfg.MQTT.AckTopic != "" {
		a.OthersWrite = append(a.OthersWrite, t.Under(cfg.MQTT.AckTopic))
	}
	if cfg.CCTV.ReplyTopic != "" { // the video system's answers (side.go)
		a.OthersWrite = append(a.OthersWrite, t.Under(cfg.CCTV.ReplyTopic))
	}
	if cfg.MQTT.Discovery.Enabled {
		a.OthersWrite = append(a.OthersWrite, cfg.MQTT.Discovery.Prefix+"/status") // Home Assistant's birth
	}
	return a, password, nil
}

// silentInputs are the inputs whose state is never published on MQTT nor
// announced to Home Assistant: panic buttons, and generic inputs raising a
// silent playbook (§4.3: nothing in the hall may show a robbery).
func silentInputs(cfg *config.Config) []string {
	var ids []string
	for _, in := range cfg.Inputs {
		silent := in.Kind == config.KindPanic
		if in.Kind == config.KindGeneric && in.Playbook != "" {
			if pb := cfg.Playbook(in.Playbook); pb != nil && pb.Mode == "silent" {
				silent = true
			}
		}
		if silent {
			ids = append(ids, in.ID)
		}
	}
	return ids
}
