package config

import (
	"cmp"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults applied before validation.
const (
	DefaultHTTPListen   = "127.0.0.1:9464"
	DefaultLocalListen  = "127.0.0.1:9465"
	DefaultMQTTListen   = "127.0.0.1:1883"
	DefaultTopicPrefix  = "hallguard"
	DefaultStateDir     = "/var/lib/hallguard"
	DefaultEventBuffer  = 1024
	DefaultDebounce     = 20 * time.Millisecond
	DefaultVerifyWindow = 30 * time.Second
)

// applyDefaults fills what the file left out, section by section. The
// order matters: inputs and outputs take gpio.chip after its default, and
// mqtt.client_id takes hall.id.
func (c *Config) applyDefaults() {
	c.applyBackendDefaults()
	c.applyLineDefaults()
	c.applySmokeDefaults()
	c.applyQueueDefaults()
	c.applyMQTTDefaults()
	c.applyHTTPDefaults()
	c.applyJournalDefaults()
	c.applyCommandsDefaults()
	c.applyConsoleDefaults()
	c.applyDirDefaults()
	c.applyPlanDefaults()
	c.applyARCDefaults()
	c.applyIncidentDefaults()
}

// applyBackendDefaults defaults backend and its gpio settings.
func (c *Config) applyBackendDefaults() {
	c.Backend = cmp.Or(c.Backend, "gpiocdev")
	c.GPIO.Chip = cmp.Or(c.GPIO.Chip, "gpiochip0")
	c.GPIO.EventBuffer = cmp.Or(c.GPIO.EventBuffer, DefaultEventBuffer)
	c.GPIO.Debounce = cmp.Or(c.GPIO.Debounce, "software")
}

// applyLineDefaults defaults inputs and outputs; a line given by offset
// without a chip is on gpio.chip.
func (c *Config) applyLineDefaults() {
	for i := range c.Inputs {
		in := &c.Inputs[i]
		in.Contact = cmp.Or(in.Contact, ContactNO)
		in.Debounce = cmp.Or(in.Debounce, Duration(DefaultDebounce))
		if in.Chip == "" && in.Line != nil {
			in.Chip = c.GPIO.Chip
		}
	}
	for i := range c.Outputs {
		if c.Outputs[i].Chip == "" && c.Outputs[i].Line != nil {
			c.Outputs[i].Chip = c.GPIO.Chip
		}
	}
}

func (c *Config) applySmokeDefaults() {
	c.Smoke.Verify = cmp.Or(c.Smoke.Verify, VerifyPersist)
	c.Smoke.VerifyWindow = cmp.Or(c.Smoke.VerifyWindow, Duration(DefaultVerifyWindow))
	c.Smoke.ConfirmWindow = cmp.Or(c.Smoke.ConfirmWindow, Duration(2*time.Minute))
}

func (c *Config) applyQueueDefaults() {
	q := &c.Queue
	q.RateWindow = cmp.Or(q.RateWindow, Duration(5*time.Minute))
	q.SurgeAfter = cmp.Or(q.SurgeAfter, Duration(2*time.Minute))
	q.ClearAfter = cmp.Or(q.ClearAfter, Duration(5*time.Minute))
	q.DailyReset = cmp.Or(q.DailyReset, "00:00")
}

// applyMQTTDefaults defaults mqtt; client_id is made from hall.id.
func (c *Config) applyMQTTDefaults() {
	m := &c.MQTT
	m.Broker = cmp.Or(m.Broker, "embedded")
	if m.Broker == "embedded" && m.Listen == "" {
		m.Listen = DefaultMQTTListen
	}
	m.TopicPrefix = cmp.Or(m.TopicPrefix, DefaultTopicPrefix)
	m.ClientID = cmp.Or(m.ClientID, "hallguard-"+c.Hall.ID)
	m.Keepalive = cmp.Or(m.Keepalive, Duration(30*time.Second))
	m.ConnectTimeout = cmp.Or(m.ConnectTimeout, Duration(10*time.Second))
	m.WriteTimeout = cmp.Or(m.WriteTimeout, Duration(10*time.Second))
	m.MaxReconnect = cmp.Or(m.MaxReconnect, Duration(30*time.Second))
	m.AckTimeout = cmp.Or(m.AckTimeout, Duration(time.Minute))
	m.Discovery.Prefix = cmp.Or(m.Discovery.Prefix, "homeassistant")
}

func (c *Config) applyHTTPDefaults() {
	c.HTTP.Listen = cmp.Or(c.HTTP.Listen, DefaultHTTPListen)
	c.HTTP.LocalListen = cmp.Or(c.HTTP.LocalListen, DefaultLocalListen)
}

func (c *Config) applyJournalDefaults() {
	c.Journal.HeadInterval = cmp.Or(c.Journal.HeadInterval, Duration(time.Minute))
	c.Journal.OutboxRetention = cmp.Or(c.Journal.OutboxRetention, Duration(30*24*time.Hour))
	c.Journal.ReportBudget = cmp.Or(c.Journal.ReportBudget, Duration(time.Second))
}

func (c *Config) applyCommandsDefaults() {
	c.Commands.Auth = cmp.Or(c.Commands.Auth, "hmac")
	c.Commands.Window = cmp.Or(c.Commands.Window, Duration(2*time.Minute))
	c.Commands.MaxPayload = cmp.Or(c.Commands.MaxPayload, 4096)
}

func (c *Config) applyConsoleDefaults() {
	c.Console.MaxPINFailures = cmp.Or(c.Console.MaxPINFailures, 5)
	c.Console.Lockout = cmp.Or(c.Console.Lockout, Duration(5*time.Minute))
}

// applyDirDefaults defaults state_dir and playbooks_dir.
func (c *Config) applyDirDefaults() {
	c.StateDir = cmp.Or(c.StateDir, DefaultStateDir)
	c.PlaybooksDir = cmp.Or(c.PlaybooksDir, "playbooks")
}

var (
	idRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	hhmmRe = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
)

var (
	backends = []string{"gpiocdev", "periph", "sim"}
	kinds    = []string{KindPanic, KindSmoke, KindCallpoint, KindCounter, KindTamper, KindGeneric}
	variants = []string{VariantArmed, VariantExplosive, VariantGas}
	biases   = []string{"", "pull-up", "pull-down", "disabled", BiasAsIs}
)

// validate checks the config section by section, in the order of the
// struct; the order of its errors is part of its output.
func (c *Config) validate(v *validator) {
	c.validateHall(v)
	c.validateBackend(v)
	u := &uniq{v: v, backend: c.Backend, ids: map[string]string{}, lines: map[string]string{}}
	c.validateInputs(v, u)
	c.validateOutputs(v, u)
	c.validateSmoke(v)
	c.validateQueue(v)
	c.validateMQTT(v)
	c.validateHTTP(v)
	c.validateRoles(u)
	c.validateJournal(v)
	c.validateCommands(v)
	c.validateConsole(v)
	c.validatePlan(v)
	c.validateARC(v)
	c.validateZones(v)
	c.validateIncidents(v)
}

// uniq checks what must be unique across sections: ids (inputs, outputs
// and roles share one namespace) and lines (inputs and outputs).
type uniq struct {
	v       *validator
	backend string
	ids     map[string]string // id -> field of first use
	lines   map[string]string // line key -> field of first use
}

func (u *uniq) checkID(field, id string) {
	v := u.v
	if id == "" {
		v.add(field, "required")
		return
	}
	if !idRe.MatchString(id) {
		v.add(field, "%q must be lower-case letters, digits, '-' or '_'", id)
		return
	}
	if prev, dup := u.ids[id]; dup {
		v.add(field, "id %q already used by %s", id, prev)
		return
	}
	u.ids[id] = strings.TrimSuffix(field, ".id")
}

func (u *uniq) checkLine(field, chip string, line *int, name string) {
	v := u.v
	switch {
	case line == nil && name == "":
		v.add(field+".line", "a line is required: give line (offset) or line_name")
		return
	case line != nil && name != "":
		v.add(field+".line", "give line or line_name, not both")
		return
	case line != nil && *line < 0:
		v.add(field+".line", "offset %d must not be negative", *line)
		return
	}
	if u.backend == "periph" && name == "" {
		v.add(field+".line", "the periph backend chooses lines by name: use line_name")
	}
	key, at := "line_name "+name, field+".line_name"
	if line != nil {
		key, at = fmt.Sprintf("%s line %d", chip, *line), field+".line"
	}
	if prev, dup := u.lines[key]; dup {
		v.add(at, "%s is already used by %s", key, prev)
		return
	}
	u.lines[key] = field
}

func (c *Config) validateHall(v *validator) {
	if c.Hall.ID == "" {
		v.add("hall.id", "required")
	} else if !idRe.MatchString(c.Hall.ID) {
		v.add("hall.id", "%q must be lower-case letters, digits, '-' or '_' (it is used in MQTT topics)", c.Hall.ID)
	}
	if c.Hall.Name == "" {
		v.add("hall.name", "required (§3.3 1: the report names the hall)")
	}
	if c.Hall.Location == "" {
		v.add("hall.location", "required (§3.3 1: the report gives the hall's location)")
	}
}

// validateBackend checks backend and its gpio settings.
func (c *Config) validateBackend(v *validator) {
	if !slices.Contains(backends, c.Backend) {
		v.add("backend", "unknown backend %q (want one of %s)", c.Backend, strings.Join(backends, ", "))
	}
	if c.GPIO.EventBuffer < 0 {
		v.add("gpio.event_buffer", "must not be negative")
	}
	if c.GPIO.Debounce != "software" && c.GPIO.Debounce != "kernel" {
		v.add("gpio.debounce", "unknown mode %q (want software or kernel)", c.GPIO.Debounce)
	}
}

func (c *Config) validateInputs(v *validator, u *uniq) {
	for i, in := range c.Inputs {
		f := fmt.Sprintf("inputs[%d]", i)
		u.checkID(f+".id", in.ID)
		u.checkLine(f, in.Chip, in.Line, in.LineName)
		if !slices.Contains(kinds, in.Kind) {
			v.add(f+".kind", "unknown kind %q (want one of %s)", in.Kind, strings.Join(kinds, ", "))
		}
		switch in.Kind {
		case KindPanic:
			if in.Variant == "" {
				v.add(f+".variant", "a panic input needs a variant: armed (§4.3(a)), explosive (§4.3(b)) or gas (§4.3(c))")
			} else if !slices.Contains(variants, in.Variant) {
				v.add(f+".variant", "unknown variant %q (want armed, explosive or gas)", in.Variant)
			}
		default:
			if in.Variant != "" {
				v.add(f+".variant", "only panic inputs take a variant")
			}
		}
		if in.Kind == KindCounter {
			if in.Direction != "in" && in.Direction != "out" {
				v.add(f+".direction", "a counter input needs direction in (arrivals) or out (departures)")
			}
		} else if in.Direction != "" {
			v.add(f+".direction", "only counter inputs take a direction")
		}
		if in.Playbook != "" && in.Kind != KindGeneric {
			v.add(f+".playbook", "only generic inputs are mapped to a manual playbook")
		}
		if !slices.Contains(biases, in.Bias) {
			v.add(f+".bias", "unknown bias %q (want pull-up, pull-down, disabled or as-is)", in.Bias)
		}
		if in.Contact != ContactNO && in.Contact != ContactNC {
			v.add(f+".contact", "unknown contact %q (want NO or NC)", in.Contact)
		}
		if in.Debounce.D() > time.Second {
			v.add(f+".debounce", "%s is too long: a panic press must not wait on it (at most 1s)", in.Debounce.D())
		}
		if in.StuckAfter != 0 && in.StuckAfter.D() < time.Second {
			v.add(f+".stuck_after", "%s is too short (at least 1s, or 0 to disable)", in.StuckAfter.D())
		}
	}
}

func (c *Config) validateOutputs(v *validator, u *uniq) {
	for i, o := range c.Outputs {
		f := fmt.Sprintf("outputs[%d]", i)
		u.checkID(f+".id", o.ID)
		u.checkLine(f, o.Chip, o.Line, o.LineName)
		switch o.FailSafe {
		case LevelInactive, LevelActive:
		case "":
			v.add(f+".fail_safe", "required: the level (inactive or active) the output takes at start, at stop and on failure")
		default:
			v.add(f+".fail_safe", "unknown level %q (want inactive or active)", o.FailSafe)
		}
		if o.Audible && o.SilentOK {
			v.add(f+".silent_ok", "an audible output can never be silent_ok (§4.3: robbery is silent)")
		}
	}
}

func (c *Config) validateSmoke(v *validator) {
	s := c.Smoke
	switch s.Verify {
	case VerifyPersist, VerifyRetrigger, VerifyNone:
	default:
		v.add("smoke.verify", "unknown mode %q (want persist, retrigger or none)", s.Verify)
	}
	hasSmoke := slices.ContainsFunc(c.Inputs, func(in Input) bool { return in.Kind == KindSmoke })
	if hasSmoke && s.Verify != VerifyNone && s.VerifyWindow.D() > 5*time.Minute {
		v.add("smoke.verify_window", "%s is too long for alarm verification (at most 5m)", s.VerifyWindow.D())
	}
}

func (c *Config) validateQueue(v *validator) {
	q := c.Queue
	if q.SurgeLength < 0 || q.ClearLength < 0 {
		v.add("queue.surge_length", "queue thresholds must not be negative")
	}
	if q.SurgeLength > 0 && q.ClearLength >= q.SurgeLength {
		v.add("queue.clear_length", "%d must be below surge_length %d (hysteresis)", q.ClearLength, q.SurgeLength)
	}
	if q.SurgeRate > 0 && q.ClearRate >= q.SurgeRate {
		v.add("queue.clear_rate", "%g must be below surge_rate %g (hysteresis)", q.ClearRate, q.SurgeRate)
	}
	if !hhmmRe.MatchString(q.DailyReset) {
		v.add("queue.daily_reset", "%q is not a time of day HH:MM", q.DailyReset)
	}
}

func (c *Config) validateMQTT(v *validator) {
	m := c.MQTT
	if m.Broker == "embedded" {
		host, _, err := net.SplitHostPort(m.Listen)
		if err != nil {
			v.add("mqtt.listen", "%q is not host:port", m.Listen)
		} else if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			v.add("mqtt.listen", "the embedded broker listens on loopback only, not %q", host)
		}
	} else {
		u, err := url.Parse(m.Broker)
		if err != nil || u.Host == "" {
			v.add("mqtt.broker", "%q is not embedded or a URL such as tcp://host:1883 or ssl://host:8883", m.Broker)
		} else if !slices.Contains([]string{"tcp", "ssl", "tls", "mqtt", "mqtts"}, u.Scheme) {
			v.add("mqtt.broker", "unsupported scheme %q (want tcp, ssl, tls, mqtt or mqtts)", u.Scheme)
		} else if (u.Scheme == "tcp" || u.Scheme == "mqtt") && (m.Username != "" || m.PasswordFile != "") && !loopbackHost(u.Hostname()) {
			v.add("mqtt.broker", "%s is plain TCP to a host that is not loopback: the username and password would cross the network in clear (use ssl://)", m.Broker)
		}
		if m.Listen != "" {
			v.add("mqtt.listen", "only the embedded broker listens; remove it or set broker: embedded")
		}
	}
	if strings.ContainsAny(m.TopicPrefix, "+#") || strings.HasPrefix(m.TopicPrefix, "/") || strings.HasSuffix(m.TopicPrefix, "/") {
		v.add("mqtt.topic_prefix", "%q must not contain + or # nor start or end with /", m.TopicPrefix)
	}
	if p := m.Discovery.Prefix; strings.ContainsAny(p, "+#") || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		v.add("mqtt.discovery.prefix", "%q must not contain + or # nor start or end with /", p)
	}
	if m.AckTopic != "" && (strings.ContainsAny(m.AckTopic, "+#") || strings.HasPrefix(m.AckTopic, "/")) {
		v.add("mqtt.ack_topic", "%q must be a topic under the hall's root, without + or # (e.g. cmd/received)", m.AckTopic)
	}
	if m.AckTimeout.D() < 5*time.Second {
		v.add("mqtt.ack_timeout", "%s is too short (at least 5s)", m.AckTimeout.D())
	}
	if (m.TLS.CertFile == "") != (m.TLS.KeyFile == "") {
		v.add("mqtt.tls.key_file", "cert_file and key_file go together")
	}
	if m.Username == "" && m.PasswordFile != "" {
		v.add("mqtt.username", "password_file given without a username")
	}
}

func (c *Config) validateHTTP(v *validator) {
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		v.add("http.listen", "%q is not host:port", c.HTTP.Listen)
	}
	c.validateLocalListen(v)
}

// validateRoles checks role ids, which share the namespace of input and
// output ids.
func (c *Config) validateRoles(u *uniq) {
	for i, r := range c.Roles {
		u.checkID(fmt.Sprintf("roles[%d].id", i), r.ID)
	}
}

func (c *Config) validateJournal(v *validator) {
	j := c.Journal
	if j.Retention != 0 && j.Retention.D() < 30*24*time.Hour {
		v.add("journal.retention", "%s is too short to keep incident records (§3.5: at least 30d, or 0 to keep forever)", j.Retention.D())
	}
	if j.HeadInterval.D() < time.Second {
		v.add("journal.head_interval", "%s is too short (at least 1s)", j.HeadInterval.D())
	}
	if j.OutboxRetention.D() < time.Hour {
		v.add("journal.outbox_retention", "%s is too short (at least 1h)", j.OutboxRetention.D())
	}
	if b := j.ReportBudget.D(); b < 10*time.Millisecond || b > 10*time.Second {
		v.add("journal.report_budget", "%s is out of range (10ms to 10s; §3.2: reported without delay)", b)
	}
}

func (c *Config) validateCommands(v *validator) {
	cm := c.Commands
	switch cm.Auth {
	case "hmac":
		if cm.KeyFile == "" {
			v.add("commands.key_file", "required with auth: hmac (the shared key for command signatures)")
		}
	case "ed25519":
		if cm.KeyFile == "" {
			v.add("commands.key_file", "required with auth: ed25519 (the center's public key, PEM)")
		}
	case "none":
		if cm.KeyFile != "" {
			v.add("commands.key_file", "auth is none: the key file would be ignored")
		} else if c.Backend != "sim" && slices.Contains(backends, c.Backend) {
			// Unsigned commands could resolve anything but a robbery or a
			// fire from anywhere on the network: a test bench only.
			v.add("commands.auth", "none accepts unsigned commands: allowed with backend sim only (a test bench), not %s", c.Backend)
		}
	default:
		v.add("commands.auth", "unknown auth %q (want ed25519, hmac or none)", cm.Auth)
	}
	if cm.Window.D() < 10*time.Second || cm.Window.D() > time.Hour {
		v.add("commands.window", "%s is out of range (10s to 1h)", cm.Window.D())
	}
	if cm.MaxPayload < 512 || cm.MaxPayload > 1<<20 {
		v.add("commands.max_payload", "%d is out of range (512 to 1048576 bytes)", cm.MaxPayload)
	}
}

// validateLocalListen refuses a local listener (console, /api/*, reload)
// that others than the box can reach, unless it has TLS and client
// authentication (issue #12 §2).
func (c *Config) validateLocalListen(v *validator) {
	h := c.HTTP
	host, _, err := net.SplitHostPort(h.LocalListen)
	if err != nil {
		v.add("http.local_listen", "%q is not host:port", h.LocalListen)
		return
	}
	t := h.LocalTLS
	if (t.CertFile != "" || t.KeyFile != "" || t.ClientCAFile != "") && !t.Complete() {
		v.add("http.local_tls", "cert_file, key_file and client_ca_file go together (TLS and client certificates)")
	} else if !IsLoopback(host) && !t.Complete() {
		v.add("http.local_listen", "%q is reachable from the network: the console, /api/* and reload need a loopback address, or http.local_tls with cert_file, key_file and client_ca_file", h.LocalListen)
	}
	if _, port, _ := net.SplitHostPort(h.Listen); h.LocalListen == h.Listen && port != "0" {
		v.add("http.local_listen", "%q is http.listen too: the two listeners need their own addresses", h.LocalListen)
	}
	for i, name := range h.Hosts {
		if name == "" || strings.ContainsAny(name, ":/ ") {
			v.add(fmt.Sprintf("http.hosts[%d]", i), "%q is not a host name (no port, no scheme)", name)
		}
	}
}

// IsLoopback reports whether host (from host:port) names the box itself:
// a loopback IP or localhost. An empty host is every interface.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// loopbackHost reports whether host is a loopback IP or localhost.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// pinHashRe is a console PIN hash: pbkdf2-sha256$<iterations>$<salt>$<hash>,
// salt and hash in standard base64 (`hallguard pin` makes one).
var pinHashRe = regexp.MustCompile(`^pbkdf2-sha256\$([0-9]{4,9})\$[A-Za-z0-9+/]{11,}={0,2}\$[A-Za-z0-9+/]{43}=?$`)

func (c *Config) validateConsole(v *validator) {
	names, labels := map[string]bool{}, map[string]bool{}
	for i, s := range c.Console.Staff {
		f := fmt.Sprintf("console.staff[%d]", i)
		switch {
		case strings.TrimSpace(s.Name) == "":
			v.add(f+".name", "required (actions are recorded under it)")
		case names[s.Name]:
			v.add(f+".name", "%q is listed twice", s.Name)
		}
		names[s.Name] = true
		if s.Label != "" {
			switch {
			case labels[s.Label]:
				v.add(f+".label", "%q is shown for two people", s.Label)
			case len([]rune(s.Label)) > 24:
				v.add(f+".label", "%q is too long for the picker (at most 24 characters)", s.Label)
			}
			labels[s.Label] = true
		}
		checkPINHash(v, f+".pin_hash", s.PINHash)
	}
	if c.Console.DuressPINHash != "" {
		checkPINHash(v, "console.duress_pin_hash", c.Console.DuressPINHash)
	}
	if n := c.Console.MaxPINFailures; n < 1 || n > 100 {
		v.add("console.max_pin_failures", "%d is out of range (1 to 100)", n)
	}
	if d := c.Console.Lockout.D(); d < 10*time.Second || d > 24*time.Hour {
		v.add("console.lockout", "%s is out of range (10s to 24h)", d)
	}
}

func checkPINHash(v *validator, field, h string) {
	m := pinHashRe.FindStringSubmatch(h)
	if m == nil {
		v.add(field, "not a PIN hash: want pbkdf2-sha256$<iterations>$<salt>$<hash> as `hallguard pin` prints it (never the PIN itself)")
		return
	}
	if n, _ := strconv.Atoi(m[1]); n < 10000 {
		v.add(field, "%d iterations is too few (at least 10000)", n)
	}
}

// Path resolves a path from the config: absolute as it is, relative from
// the config file's folder.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) || c.File == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.File), p)
}

// validatePlaybookRefs checks what the playbooks refer to in the config.
func (c *Config) validatePlaybookRefs(v *validator) {
	c.validateARCPlaybooks(v)
	for _, p := range c.Playbooks {
		pv := &validator{file: p.File, pos: p.pos}
		for i, e := range p.Escalation {
			if c.Role(e.Role) == nil {
				pv.add(fmt.Sprintf("escalation[%d].role", i), "role %q is not defined in %s (roles:)", e.Role, c.File)
			}
		}
		v.errs = append(v.errs, pv.errs...)
	}
	for i, in := range c.Inputs {
		if in.Playbook == "" {
			continue
		}
		p := c.Playbook(in.Playbook)
		f := fmt.Sprintf("inputs[%d].playbook", i)
		if p == nil {
			v.add(f, "no playbook %q in %s", in.Playbook, c.PlaybooksDir)
		} else if !p.Manual {
			v.add(f, "playbook %q is not manual", in.Playbook)
		}
	}
	if c.Console.DuressPINHash != "" {
		if p := c.Playbook("duress"); p == nil || p.Mode != "silent" || !p.Manual {
			v.add("console.duress_pin_hash", "needs a silent, manual \"duress\" playbook in %s (§4.3)", c.PlaybooksDir)
		}
	}
	for _, need := range []string{"robbery", "fire", "surge"} {
		if c.Playbook(need) == nil {
			v.add("playbooks_dir", "no %q playbook: the plan's §4 needs it", need)
		}
	}
}

var sectionRe = regexp.MustCompile(`^§\d+(\.\d+)?(\([a-z]\))?( ?\d+)?$`)

func (p *Playbook) validate(v *validator) {
	if p.ID == "" || !idRe.MatchString(p.ID) {
		v.add("id", "required: lower-case letters, digits, '-' or '_'")
	}
	sectionOK := sectionRe.MatchString(p.Section)
	if !sectionOK {
		v.add("section", "%q must cite the plan, e.g. §4.4", p.Section)
	}
	if p.Title.ZH == "" || p.Title.EN == "" {
		v.add("title", "needs zh and en")
	}
	if p.Type.ZH == "" || p.Type.EN == "" {
		v.add("type", "needs zh and en (§3.3 3)")
	}
	if p.Mode != "silent" && p.Mode != "audible" {
		v.add("mode", "%q: want silent or audible", p.Mode)
	}
	if p.ResolveBy != "center" && p.ResolveBy != "hall" {
		v.add("resolve_by", "%q: want center or hall", p.ResolveBy)
	}
	if p.Mode == "silent" && p.ResolveBy != "center" {
		v.add("resolve_by", "a silent playbook is resolved only by the center (§4.3)")
	}
	for i, t := range p.Triggers {
		if !slices.Contains([]string{KindPanic, KindSmoke, KindCallpoint, KindCounter, "probe"}, t) {
			v.add(fmt.Sprintf("triggers[%d]", i), "unknown trigger %q", t)
		}
	}
	if len(p.Triggers) == 0 && !p.Manual {
		v.add("manual", "a playbook with no triggers must be manual")
	}
	p.validateEscalation(v)
	stepIDs := map[string]bool{}
	p.validateSteps(v, "steps", p.Steps, stepIDs, sectionOK)
	for i, vr := range p.Variants {
		f := fmt.Sprintf("variants[%d]", i)
		if vr.ID == "" {
			v.add(f+".id", "required")
		}
		p.validateSteps(v, f+".steps", vr.Steps, stepIDs, sectionOK)
	}
	if len(p.Steps) == 0 && len(p.Variants) == 0 {
		v.add("steps", "a playbook needs steps")
	}
	for i, o := range p.Outputs {
		if o.Output == "" {
			v.add(fmt.Sprintf("outputs[%d].output", i), "required")
		}
	}
}

func (p *Playbook) validateEscalation(v *validator) {
	var last time.Duration
	for i, e := range p.Escalation {
		f := fmt.Sprintf("escalation[%d]", i)
		if e.After.D() <= last {
			v.add(f+".after", "escalation times must increase (got %s after %s)", e.After.D(), last)
		}
		last = e.After.D()
		if e.Role == "" {
			v.add(f+".role", "required")
		}
	}
}

// validateSteps checks the steps under prefix. stepIDs holds the step ids
// seen so far in the whole playbook (steps and every variant's); sectionOK
// says whether the playbook's own section is well formed.
func (p *Playbook) validateSteps(v *validator, prefix string, steps []Step, stepIDs map[string]bool, sectionOK bool) {
	for i, s := range steps {
		f := fmt.Sprintf("%s[%d]", prefix, i)
		if s.ID == "" {
			v.add(f+".id", "required")
		} else if stepIDs[s.ID] {
			v.add(f+".id", "step %q defined twice", s.ID)
		}
		stepIDs[s.ID] = true
		// With a bad playbook section only the form is checked: one
		// error, not one per step.
		if !sectionRe.MatchString(s.Section) || sectionOK && !citesItemOf(s.Section, p.Section) {
			v.add(f+".section", "%q must cite an item of %s", s.Section, p.Section)
		}
		if s.Text.ZH == "" || s.Text.EN == "" {
			v.add(f+".text", "needs zh and en")
		}
		if s.Action != "" && s.Action != "preserve_cctv" {
			v.add(f+".action", "unknown action %q (want preserve_cctv)", s.Action)
		}
		for j, r := range s.Records {
			if !slices.Contains([]string{"witness", "message", "count", "note"}, r) {
				v.add(fmt.Sprintf("%s.records[%d]", f, j), "unknown record %q (want witness, message, count or note)", r)
			}
		}
	}
}

// citesItemOf reports whether section is sec or an item of it: "§4.1 2" and
// "§4.3(a)1" are, "§4.10 1" is not an item of "§4.1".
func citesItemOf(section, sec string) bool {
	rest, ok := strings.CutPrefix(section, sec)
	return ok && (rest == "" || rest[0] < '0' || rest[0] > '9')
}
