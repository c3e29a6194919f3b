package config

import (
	"time"
)

// Config is the whole daemon configuration.
type Config struct {
	Hall     Hall     `yaml:"hall"`
	Backend  string   `yaml:"backend"` // gpiocdev | periph | sim
	GPIO     GPIO     `yaml:"gpio"`
	Inputs   []Input  `yaml:"inputs"`
	Outputs  []Output `yaml:"outputs"`
	Smoke    Smoke    `yaml:"smoke"`
	Queue    Queue    `yaml:"queue"`
	MQTT     MQTT     `yaml:"mqtt"`
	HTTP     HTTP     `yaml:"http"`
	Roles    []Role   `yaml:"roles"`
	Commands Commands `yaml:"commands"`
	Journal  Journal  `yaml:"journal"`
	Console  Console  `yaml:"console"`
	Review   Review   `yaml:"review"` // §3.4 (plan.go)
	Probe    Probe    `yaml:"probe"`  // §4.2
	CCTV     CCTV     `yaml:"cctv"`   // preserve_cctv steps
	ARC      ARC      `yaml:"arc"`    // SIA DC-09 to the alarm receiving centre (arc.go)
	// Incidents: how long resolved incidents stay in memory (incidents.go).
	Incidents Incidents `yaml:"incidents"`
	StateDir  string    `yaml:"state_dir"`
	// PlaybooksDir holds the playbook files. A relative path is taken
	// relative to the config file's folder.
	PlaybooksDir string `yaml:"playbooks_dir"`

	// Set by Load, not by YAML.
	File      string      `yaml:"-"`
	Playbooks []*Playbook `yaml:"-"`
	// Warnings are the careless parts of a valid config (warn.go,
	// filecheck.go), each with its file, line and field. `hallguard check`
	// prints them, `check -strict` refuses the config for them, and `run`
	// logs them.
	Warnings Errors `yaml:"-"`
	pos      positions
	digest   [32]byte
}

// Hall identifies the service hall (§3.3 1).
type Hall struct {
	ID       string `yaml:"id" json:"id"`
	Name     string `yaml:"name" json:"name"`
	Location string `yaml:"location" json:"location"`
	Region   string `yaml:"region" json:"region"`
}

// GPIO holds backend-wide line settings.
type GPIO struct {
	// Chip is the default chip for lines that name none (gpiocdev).
	Chip string `yaml:"chip"`
	// EventBuffer is the kernel event buffer per line (gpiocdev).
	EventBuffer int `yaml:"event_buffer"`
	// Debounce is software (default: leading-edge in hallguard, so a press
	// is reported on its first edge) or kernel (gpiocdev asks the kernel,
	// whose debouncer is trailing-edge: a press is reported only after the
	// line has been stable for the whole period).
	Debounce string `yaml:"debounce"`
}

// Input kinds.
const (
	KindPanic     = "panic"
	KindSmoke     = "smoke"
	KindCallpoint = "callpoint"
	KindCounter   = "counter"
	KindTamper    = "tamper"
	KindGeneric   = "generic"
)

// Panic variants (§4.3 (a), (b), (c)).
const (
	VariantArmed     = "armed"
	VariantExplosive = "explosive"
	VariantGas       = "gas"
)

// Input is one input line.
type Input struct {
	ID   string `yaml:"id"`
	Kind string `yaml:"kind"`
	// Variant selects the robbery case for panic inputs.
	Variant string `yaml:"variant"`
	// Name is a human label ("Counter 1 panic button").
	Name string `yaml:"name"`
	Chip string `yaml:"chip"`
	// Line is the line offset on the chip; LineName the line's name.
	// Exactly one of the two is given.
	Line      *int    `yaml:"line"`
	LineName  string  `yaml:"line_name"`
	ActiveLow bool    `yaml:"active_low"`
	Bias      string  `yaml:"bias"`    // pull-up | pull-down | disabled | as-is (BiasAsIs)
	Contact   Contact `yaml:"contact"` // NO | NC
	// Debounce is the line's debounce period (kernel where the backend can,
	// else software; leading-edge in software, so a press is not delayed).
	Debounce Duration `yaml:"debounce"`
	// StuckAfter raises trouble (NO) or tamper (NC: loop open) when the
	// input stays active this long. 0 disables it.
	StuckAfter Duration `yaml:"stuck_after"`
	// Direction is in (arrival) or out (departure) for counter inputs.
	Direction string `yaml:"direction"`
	// Playbook is the manual playbook a generic input raises (optional).
	Playbook string `yaml:"playbook"`
	// Zone groups inputs for a walk test, which names the inputs or zones
	// it covers (optional; lower-case, like ids).
	Zone string `yaml:"zone"`
}

// Contact is how an input's switch is wired, as the YAML spells it; the
// words are devices.Contact's (config imports nothing of this module).
type Contact string

// Contacts.
const (
	ContactNO Contact = "NO" // normally open (the default)
	ContactNC Contact = "NC" // normally closed
)

// BiasAsIs is the input bias that leaves the line's bias as it is
// (devices.BiasAsIs, which the YAML cannot spell as "").
const BiasAsIs = "as-is"

// Level is an output's fail-safe level, as the YAML spells it.
type Level string

// Levels.
const (
	LevelInactive Level = "inactive"
	LevelActive   Level = "active"
)

// Output is one output line.
type Output struct {
	ID        string `yaml:"id"`
	Name      string `yaml:"name"`
	Chip      string `yaml:"chip"`
	Line      *int   `yaml:"line"`
	LineName  string `yaml:"line_name"`
	ActiveLow bool   `yaml:"active_low"`
	// FailSafe is the level at start and stop: inactive or active.
	// Required: an installer must decide it for each relay.
	FailSafe Level `yaml:"fail_safe"`
	// Audible outputs (sirens, sounders) never act during a robbery.
	Audible bool `yaml:"audible"`
	// SilentOK outputs (police link relay) may act during silent playbooks.
	SilentOK bool `yaml:"silent_ok"`
	// LiveOnly outputs (power cut) never act during a drill.
	LiveOnly bool `yaml:"live_only"`
}

// Smoke verification modes.
const (
	VerifyPersist   = "persist"   // active for the whole verify window
	VerifyRetrigger = "retrigger" // as persist; the re-alarm rule below holds in every mode
	VerifyNone      = "none"      // every smoke activation is fire at once
)

// Smoke configures alarm verification for smoke inputs (§4.4). In every
// mode, a detector that re-alarms within ConfirmWindow after a reset is
// fire (the reset, retard, confirmation cycle), and two detectors active
// within ConfirmWindow give fire at once.
type Smoke struct {
	Verify        string   `yaml:"verify"`
	VerifyWindow  Duration `yaml:"verify_window"`
	ConfirmWindow Duration `yaml:"confirm_window"`
}

// Queue configures the queue model and surge detection (§4.1).
type Queue struct {
	// RateWindow is the sliding window for the arrival rate.
	RateWindow Duration `yaml:"rate_window"`
	// SurgeLength / ClearLength: queue length thresholds (hysteresis).
	SurgeLength int `yaml:"surge_length"`
	ClearLength int `yaml:"clear_length"`
	// SurgeRate / ClearRate: arrivals per minute thresholds; 0 disables.
	SurgeRate float64 `yaml:"surge_rate"`
	ClearRate float64 `yaml:"clear_rate"`
	// SurgeAfter is how long a threshold must be exceeded to start a surge;
	// ClearAfter how long both must stay below to end it.
	SurgeAfter Duration `yaml:"surge_after"`
	ClearAfter Duration `yaml:"clear_after"`
	// DailyReset is the local time "HH:MM" at which the length resets to 0.
	DailyReset string `yaml:"daily_reset"`
}

// MQTT configures the connection to the monitoring center's broker.
type MQTT struct {
	// Broker is "embedded" or a URL: tcp://host:1883, ssl://host:8883.
	Broker string `yaml:"broker"`
	// Listen is the embedded broker's address; it must be on loopback.
	Listen       string   `yaml:"listen"`
	ClientID     string   `yaml:"client_id"`
	TopicPrefix  string   `yaml:"topic_prefix"`
	Username     string   `yaml:"username"`
	PasswordFile string   `yaml:"password_file"`
	TLS          TLS      `yaml:"tls"`
	Keepalive    Duration `yaml:"keepalive"`
	// ConnectTimeout bounds one connection attempt; WriteTimeout one publish.
	ConnectTimeout Duration `yaml:"connect_timeout"`
	WriteTimeout   Duration `yaml:"write_timeout"`
	// MaxReconnect caps the reconnect back-off.
	MaxReconnect Duration `yaml:"max_reconnect"`
	// Discovery announces inputs and the queue to Home Assistant.
	Discovery Discovery `yaml:"discovery"`
	// AckTopic, when set (relative to the hall's root, e.g. "cmd/received"),
	// makes delivery end to end: a report is retired only when the center
	// acknowledges it there by report id (a signed "received" command), and
	// is sent again if that does not come within AckTimeout.
	AckTopic   string   `yaml:"ack_topic"`
	AckTimeout Duration `yaml:"ack_timeout"`
}

// Discovery configures Home Assistant MQTT discovery. Panic inputs are
// never announced (§4.3: robbery is silent).
type Discovery struct {
	Enabled bool   `yaml:"enabled"`
	Prefix  string `yaml:"prefix"` // default homeassistant
}

// TLS file paths.
type TLS struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Commands configures commands from the center and staff on MQTT
// cmd/<verb> topics.
type Commands struct {
	// Auth is ed25519 (every command carries an Ed25519 signature by the
	// center, checked with the public key in KeyFile), hmac (an
	// HMAC-SHA256 under this hall's shared key in KeyFile) or none
	// (unsigned commands accepted as unauthenticated; backend sim only).
	// Only authenticated commands may resolve a robbery (§4.3).
	Auth string `yaml:"auth"`
	// KeyFile holds the center's public key (ed25519, PEM) or the shared
	// key (hmac, at least 32 bytes); a relative path is taken from the
	// config file's folder. Compatible with systemd LoadCredential.
	KeyFile string `yaml:"key_file"`
	// Window is how far a command's timestamp may be from the hall's clock.
	Window Duration `yaml:"window"`
	// MaxPayload is the largest command payload accepted, in bytes.
	MaxPayload int `yaml:"max_payload"`
}

// Journal configures the durable journal and outbox (§3.5: kept and
// archived), one bbolt file in the state directory.
type Journal struct {
	// Retention: journal records younger than this are never compacted;
	// 0 (the default) keeps the journal forever. Export before pruning.
	Retention Duration `yaml:"retention"`
	// OutboxRetention is how long reports already acknowledged stay in the
	// outbox (they stay in the journal regardless). Default 30d.
	OutboxRetention Duration `yaml:"outbox_retention"`
	// ReportBudget is how long a report may wait for the disk before it is
	// sent from memory, flagged not yet durable, with trouble journal_slow
	// raised (§3.2: reported without delay). Default 1s; 10ms to 10s.
	ReportBudget Duration `yaml:"report_budget"`
	// HeadInterval: the chain's head (last record's seq and hash) is
	// published, signed and retained, on journal/head within a second of
	// every change and at least this often, so the center holds anchors a
	// rewritten or cut archive cannot match (issue #12 §5). Default 1m.
	HeadInterval Duration `yaml:"head_interval"`
	// HeadKeyFile is the box's Ed25519 private key (PEM, PKCS #8: `openssl
	// genpkey -algorithm ed25519`) that signs journal/head; relative to the
	// config file. Without it, a hall with commands.auth hmac signs with
	// its command key, and any other hall publishes heads unsigned.
	HeadKeyFile string `yaml:"head_key_file"`
}

// Console configures the staff console served at /console/ on http.local_listen
// (daemon/console). PINs are kept only as PBKDF2-SHA256 hashes,
// "pbkdf2-sha256$<iterations>$<salt, base64>$<hash, base64>", made by
// `hallguard pin`; never in plain text.
type Console struct {
	// Staff may act from the console; each action asks for a PIN and is
	// recorded under the staff member's name.
	Staff []Staff `yaml:"staff"`
	// DuressPINHash, entered for any action, does the action and also
	// raises the silent duress playbook (§4.3): nothing in the hall shows it.
	DuressPINHash string `yaml:"duress_pin_hash"`
	// MaxPINFailures wrong PINs within Lockout lock the console's PIN entry
	// for Lockout (default 5 in 5m).
	MaxPINFailures int      `yaml:"max_pin_failures"`
	Lockout        Duration `yaml:"lockout"`
}

// Staff is one member of staff who may act from the console.
type Staff struct {
	Name    string `yaml:"name"`
	PINHash string `yaml:"pin_hash"`
	// Label is what the console's name picker shows for this person (a
	// counter or a first name, say); the name itself never reaches the page
	// (issue #12 §1). Default: the position in the list, 1, 2, ...
	Label string `yaml:"label"`
}

// HTTP configures the two listeners (issue #12 §2).
type HTTP struct {
	// Listen serves /metrics and /healthz: operations may open it to their
	// Prometheus.
	Listen string `yaml:"listen"`
	// LocalListen serves the staff console, /api/* (incidents, the
	// journal) and /-/reload: loopback, unless LocalTLS is complete (TLS
	// and client certificates).
	LocalListen string   `yaml:"local_listen"`
	LocalTLS    LocalTLS `yaml:"local_tls"`
	// Hosts are the host names (besides IP literals and localhost) that a
	// request may name in its Host header, on either listener: a name
	// Prometheus scrapes by, say. Anything else is refused (DNS rebinding).
	Hosts []string `yaml:"hosts"`
}

// LocalTLS is TLS with client authentication for the local listener.
type LocalTLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile: clients must present a certificate signed by it.
	ClientCAFile string `yaml:"client_ca_file"`
}

// Complete reports whether TLS and client authentication are both set.
func (t LocalTLS) Complete() bool {
	return t.CertFile != "" && t.KeyFile != "" && t.ClientCAFile != ""
}

// Role is one member of the emergency leadership group (§2).
type Role struct {
	ID      string `yaml:"id"`      // supervisor | center_manager | general_manager | ...
	Title   string `yaml:"title"`   // e.g. 客户服务中心经理 / customer service center manager
	Name    string `yaml:"name"`    // person
	Contact string `yaml:"contact"` // phone, pager or MQTT handle
}

// byID returns the element of s whose idOf is id, or nil.
func byID[T any](s []T, id string, idOf func(*T) string) *T {
	for i := range s {
		if idOf(&s[i]) == id {
			return &s[i]
		}
	}
	return nil
}

// Role returns the role with the given id, or nil.
func (c *Config) Role(id string) *Role {
	return byID(c.Roles, id, func(x *Role) string { return x.ID })
}

// Input returns the input with the given id, or nil.
func (c *Config) Input(id string) *Input {
	return byID(c.Inputs, id, func(x *Input) string { return x.ID })
}

// Output returns the output with the given id, or nil.
func (c *Config) Output(id string) *Output {
	return byID(c.Outputs, id, func(x *Output) string { return x.ID })
}

// Playbook returns the playbook with the given id, or nil.
func (c *Config) Playbook(id string) *Playbook {
	for _, p := range c.Playbooks {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// Duration is a time.Duration written as "30s", "5m", "1h30m" or "2d".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
