package broker

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Option changes how Start sets the broker up.
type Option func(*settings)

type settings struct {
	auth *Auth
}

// WithAuth makes the broker authenticate every CONNECT and apply the hall's
// ACL (see Auth). Without it every client may do anything: for tests only.
func WithAuth(a Auth) Option {
	return func(s *settings) { s.auth = &a }
}

// Auth says who may connect and what each may write. There are two roles:
//
//   - the daemon (user Daemon, with its password): reads and writes every
//     topic, and alone may use the client ids in ReservedIDs;
//   - everyone else (another user of the password file, or an anonymous
//     client when Anonymous is set): reads every topic, writes only topics
//     matching OthersWrite and not in OthersDeny, never takes a reserved
//     client id (that would kick the daemon off: [MQTT-3.1.4-2] takeover),
//     and never sets a will on a topic it may not write.
//
// A CONNECT with an unknown user name or a wrong password is refused
// (CONNACK 0x04), never downgraded to anonymous. A PUBLISH the ACL refuses
// makes mochi close the connection (MQTT 3.1.1 has no negative PUBACK), so
// the publisher knows it was not taken.
type Auth struct {
	// Users maps user names to passwords (LoadPasswordFile).
	Users map[string]string
	// Daemon is the daemon's own user name; it must be in Users.
	Daemon string
	// ReservedIDs are the client ids only the daemon may use.
	ReservedIDs []string
	// OthersWrite are the topic filters others may publish to
	// (<root>/cmd/+; the center's acknowledgement topic).
	OthersWrite []string
	// OthersDeny are topics others may never publish to, even when
	// OthersWrite matches (<root>/cmd/reply: the daemon's answers).
	OthersDeny []string
	// Anonymous lets clients without a user name connect, as others.
	Anonymous bool
}

// Errors callers branch on.
var (
	// ErrAuth is returned by Start for an Auth it cannot enforce.
	ErrAuth = errors.New("broker: invalid authentication settings")
	// ErrInsecureFile: the password file is readable or writable by group
	// or others.
	ErrInsecureFile = errors.New("broker: password file readable by group or others")
)

func (a *Auth) check() error {
	if a.Daemon == "" || a.Users[a.Daemon] == "" {
		return fmt.Errorf("broker: daemon user %q has no password: %w", a.Daemon, ErrAuth)
	}
	for u := range a.Users {
		if u == "" || a.Users[u] == "" {
			return fmt.Errorf("broker: user %q without name or password: %w", u, ErrAuth)
		}
	}
	return nil
}

// authenticate reports whether the CONNECT's credentials are good, and
// whether they are the daemon's.
func (a *Auth) authenticate(user, password []byte) (ok, daemon bool) {
	if len(user) == 0 {
		return a.Anonymous && len(password) == 0, false
	}
	want, found := a.Users[string(user)]
	if !found {
		want = "\x00never" // compare anyway: no timing difference for unknown users
	}
	got, exp := sha256.Sum256(password), sha256.Sum256([]byte(want))
	if subtle.ConstantTimeCompare(got[:], exp[:]) != 1 || !found {
		return false, false
	}
	return true, string(user) == a.Daemon
}

// othersMayWrite is the write ACL of every client that is not the daemon.
func (a *Auth) othersMayWrite(topic string) bool {
	if slices.Contains(a.OthersDeny, topic) {
		return false
	}
	for _, f := range a.OthersWrite {
		if matches(f, topic) {
			return true
		}
	}
	return false
}

// matches reports whether topic matches the filter (MQTT 3.1.1 §4.7: "+"
// one level, "#" the rest).
func matches(filter, topic string) bool {
	fs, ts := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fs {
		if f == "#" {
			return true
		}
		if i >= len(ts) || (f != "+" && f != ts[i]) {
			return false
		}
	}
	return len(fs) == len(ts)
}

// OnConnectAuthenticate checks the credentials, the client id and the will.
func (g *gate) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	a := g.auth
	if a == nil {
		return true
	}
	ok, daemon := a.authenticate(pk.Connect.Username, pk.Connect.Password)
	if !ok {
		g.log.Warn("connection refused: bad credentials", "client", cl.ID, "user", string(pk.Connect.Username), "remote", cl.Net.Remote)
		return false
	}
	if daemon {
		return true
	}
	if slices.Contains(a.ReservedIDs, cl.ID) {
		g.log.Warn("connection refused: the daemon's client id", "client", cl.ID, "user", string(pk.Connect.Username), "remote", cl.Net.Remote)
		return false
	}
	if pk.Connect.WillFlag && !a.othersMayWrite(pk.Connect.WillTopic) {
		g.log.Warn("connection refused: will on a topic it may not write", "client", cl.ID, "topic", pk.Connect.WillTopic)
		return false
	}
	return true
}

// OnACLCheck lets everyone read; the daemon writes anywhere, others only
// where Auth says.
func (g *gate) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	a := g.auth
	if a == nil || !write {
		return true
	}
	if len(cl.Properties.Username) > 0 && string(cl.Properties.Username) == a.Daemon {
		return true // authenticated at CONNECT: no other client has this user name
	}
	if a.othersMayWrite(topic) {
		return true
	}
	g.log.Warn("publish refused", "client", cl.ID, "topic", topic)
	return false
}

// LoadPasswordFile reads a password file: one "user:password" per line,
// blank lines and lines starting with # ignored. The file must not be
// readable or writable by group or others. Errors name the file and line.
func LoadPasswordFile(path string) (map[string]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("broker: password file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s: mode %04o (chmod 600)", ErrInsecureFile, path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("broker: password file: %w", err)
	}
	users := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, pass, ok := strings.Cut(line, ":")
		switch {
		case !ok || user == "" || pass == "":
			// never quote the line: it holds a secret
			return nil, fmt.Errorf("broker: %s:%d: want user:password", path, n)
		case strings.ContainsAny(user, " \t+#/"):
			return nil, fmt.Errorf("broker: %s:%d: user name with a space, +, # or /", path, n)
		}
		if _, dup := users[user]; dup {
			return nil, fmt.Errorf("broker: %s:%d: user %q given twice", path, n, user)
		}
		users[user] = pass
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("broker: password file %s: %w", path, err)
	}
	return users, nil
}

// EnsurePasswordFile returns user's password from the password file at
// path, creating the file (mode 0600) with a new random password for user
// when it does not exist, and adding user when it is not in it.
func EnsurePasswordFile(path, user string) (string, error) {
	users, err := LoadPasswordFile(path)
	header := ""
	switch {
	case errors.Is(err, fs.ErrNotExist):
		users = map[string]string{}
		header = "# hallguard embedded broker users (user:password), mode 0600; made by hallguard run\n"
	case err != nil:
		return "", err
	}
	if pw := users[user]; pw != "" {
		return pw, nil
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("broker: password: %w", err)
	}
	pw := base64.RawURLEncoding.EncodeToString(b[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return "", fmt.Errorf("broker: password file: %w", err)
	}
	_, werr := fmt.Fprintf(f, "%s%s:%s\n", header, user, pw)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return "", fmt.Errorf("broker: password file %s: %w", path, err)
	}
	return pw, nil
}
