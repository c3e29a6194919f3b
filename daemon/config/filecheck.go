package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// DemoKeySHA256 is the SHA-256 of configs/demo-command.key (less its
// newline): public in the repository, so never a real hall's key.
const DemoKeySHA256 = "92ff751acec779fbe4c8443fe8531449bc9164f786858572911f420903e303f7"

// credentialsDir is where systemd's LoadCredential= puts a unit's secrets.
// They exist only while the unit runs, so `hallguard check` outside it
// cannot look at them.
const credentialsDir = "/run/credentials/"

// checkFiles checks the files the config names, as the daemon will open
// them (relative paths from the config's folder). On a real hall a
// careless file is an error; on a simulated one (backend sim: a demo or a
// test bench) it is a warning. Errors never quote a file's contents.
func (c *Config) checkFiles() Errors {
	v := &validator{file: c.File, pos: c.pos}
	w := &validator{file: c.File, pos: c.pos, warnings: true}
	careless := v // what a real hall must not run with
	if c.Backend == "sim" {
		careless = w
	}
	secret := func(field, path string) (os.FileInfo, bool) {
		st, ok := c.present(v, w, field, path)
		if ok && st.Mode().Perm()&0o066 != 0 {
			careless.add(field, "%s has mode %#o: a secret must be the owner's alone (chmod 600)", path, st.Mode().Perm())
		}
		return st, ok
	}
	switch cm := c.Commands; cm.Auth {
	case "hmac", "ed25519":
		path := c.Path(cm.KeyFile)
		var st os.FileInfo
		var ok bool
		if cm.Auth == "hmac" {
			st, ok = secret("commands.key_file", path)
		} else { // a public key: anyone may read it, nobody else may write it
			st, ok = c.present(v, w, "commands.key_file", path)
			if ok && st.Mode().Perm()&0o022 != 0 {
				careless.add("commands.key_file", "%s has mode %#o: others could replace the center's key (chmod 644)", path, st.Mode().Perm())
			}
		}
		if !ok {
			break
		}
		b, err := os.ReadFile(path)
		if err != nil {
			v.add("commands.key_file", "%s: %v", path, unwrapPath(err))
			break
		}
		if cm.Auth == "ed25519" {
			if _, err := Ed25519PublicKey(b); err != nil {
				v.add("commands.key_file", "%s: %v", path, err)
			}
			break
		}
		k, err := HMACKey(b)
		if err != nil {
			v.add("commands.key_file", "%s: %v", path, err)
			break
		}
		if sum := sha256.Sum256(k); hex.EncodeToString(sum[:]) == DemoKeySHA256 && c.Backend != "sim" {
			v.add("commands.key_file", "%s is the public demo key of the hallguard repository: make this hall's own with hallguard keygen", path)
		}
	}
	m := c.MQTT
	if m.PasswordFile != "" {
		secret("mqtt.password_file", c.Path(m.PasswordFile))
	}
	if m.TLS.CAFile != "" {
		c.present(v, w, "mqtt.tls.ca_file", c.Path(m.TLS.CAFile))
	}
	if m.TLS.CertFile != "" {
		c.present(v, w, "mqtt.tls.cert_file", c.Path(m.TLS.CertFile))
	}
	if m.TLS.KeyFile != "" {
		secret("mqtt.tls.key_file", c.Path(m.TLS.KeyFile))
	}
	// The state folder holds the journal (every incident, §3.5) and the
	// sim socket. One that does not exist yet is made mode 0700.
	if st, err := os.Stat(c.StateDir); err == nil && st.IsDir() && st.Mode().Perm()&0o077 != 0 {
		careless.add("state_dir", "%s has mode %#o: the journal's folder must be the daemon's alone (chmod 700)", c.StateDir, st.Mode().Perm())
	}
	c.Warnings = append(c.Warnings, w.errs...)
	return v.errs
}

// present checks that path exists and is a regular file. A systemd
// credential that is absent while check runs outside the unit is a
// warning: the daemon, inside it, refuses to start without it.
func (c *Config) present(v, w *validator, field, path string) (os.FileInfo, bool) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && strings.HasPrefix(path, credentialsDir) && os.Getenv("CREDENTIALS_DIRECTORY") == "":
		w.add(field, "%s is a systemd credential: not checked outside the running unit", path)
		return nil, false
	case errors.Is(err, fs.ErrNotExist):
		v.add(field, "%s does not exist", path)
		return nil, false
	case err != nil:
		v.add(field, "%s: %v", path, unwrapPath(err))
		return nil, false
	case !st.Mode().IsRegular():
		v.add(field, "%s is not a regular file", path)
		return nil, false
	}
	return st, true
}

// unwrapPath drops the *fs.PathError's repetition of the path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
