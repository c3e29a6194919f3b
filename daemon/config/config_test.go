package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hallguard/hallguard/daemon/config"
)

func TestGoodConfig(t *testing.T) {
	c, err := config.Load("testdata/good.yaml")
	if err != nil {
		t.Fatalf("testdata/good.yaml:\n%v", err)
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"hall.id", c.Hall.ID, "hall-07"},
		{"hall.region", c.Hall.Region, "north"},
		{"backend", c.Backend, "gpiocdev"},
		{"gpio.event_buffer", c.GPIO.EventBuffer, 512},
		{"gpio.debounce", c.GPIO.Debounce, "kernel"},
		{"inputs", len(c.Inputs), 9},
		{"journal.head_interval", c.Journal.HeadInterval.D(), 30 * time.Second},
		{"journal.head_key_file", c.Journal.HeadKeyFile, "journal-head.pem"},
		{"inputs[0].line", *c.Inputs[0].Line, 17},
		{"inputs[0].chip (from gpio.chip)", c.Inputs[0].Chip, "gpiochip0"},
		{"inputs[0].stuck_after", c.Inputs[0].StuckAfter.D(), time.Minute},
		{"inputs[1].chip", c.Inputs[1].Chip, "gpiochip1"},
		{"inputs[1].debounce (default)", c.Inputs[1].Debounce.D(), config.DefaultDebounce},
		{"inputs[2].line_name", c.Inputs[2].LineName, "PANIC_OFFICE"},
		{"inputs[2].chip (line_name: none)", c.Inputs[2].Chip, ""},
		{"inputs[3].contact (default)", c.Inputs[3].Contact, config.ContactNO},
		{"inputs[8].playbook", c.Inputs[8].Playbook, "illness"},
		{"inputs[3].zone", c.Inputs[3].Zone, "hall-fire"},
		{"outputs[1].fail_safe", c.Outputs[1].FailSafe, config.LevelActive},
		{"outputs[2].live_only", c.Outputs[2].LiveOnly, true},
		{"outputs[3].silent_ok", c.Outputs[3].SilentOK, true},
		{"smoke.confirm_window", c.Smoke.ConfirmWindow.D(), 90 * time.Second},
		{"queue.surge_rate", c.Queue.SurgeRate, 8.5},
		{"queue.daily_reset", c.Queue.DailyReset, "02:30"},
		{"mqtt.broker", c.MQTT.Broker, "ssl://center.example:8883"},
		{"mqtt.listen (external broker: none)", c.MQTT.Listen, ""},
		{"mqtt.tls.key_file", c.MQTT.TLS.KeyFile, "tls/hall-07.key"},
		{"mqtt.max_reconnect", c.MQTT.MaxReconnect.D(), 2 * time.Minute},
		{"roles", len(c.Roles), 3},
		{"commands.key_file", c.Commands.KeyFile, "/run/credentials/hallguard.service/command-key"},
		{"commands.window", c.Commands.Window.D(), 90 * time.Second},
		{"commands.max_payload", c.Commands.MaxPayload, 8192},
		{"file", c.File, "testdata/good.yaml"},
		{"playbooks (the ten of §4, and duress)", len(c.Playbooks), 11},
		{"console.staff[0].name", c.Console.Staff[0].Name, "Chen Jing"},
		{"console.staff[0].label", c.Console.Staff[0].Label, "Teller 1"},
		{"http.local_listen", c.HTTP.LocalListen, "10.20.0.7:9465"},
		{"http.local_tls.client_ca_file", c.HTTP.LocalTLS.ClientCAFile, "/etc/hallguard/tls/kiosk-ca.pem"},
		{"http.hosts", c.HTTP.Hosts, []string{"hall-07.branch.example"}},
		{"console.max_pin_failures", c.Console.MaxPINFailures, 3},
		{"console.lockout", c.Console.Lockout.D(), 10 * time.Minute},
		{"review.topic", c.Review.Topic, "safety/reviews"},
		{"review.due_after", c.Review.DueAfter.D(), 14 * 24 * time.Hour},
		{"probe.address", c.Probe.Address, "core.example:443"},
		{"probe.failures", c.Probe.Failures, 2},
		{"cctv.before", c.CCTV.Before.D(), 10 * time.Minute},
		{"arc.account", c.ARC.Account, "4F39"},
		{"arc.category", c.ARC.Category, "DP2"},
		{"arc.receivers[0].poll_interval", c.ARC.Receivers[0].PollInterval.D(), 5 * time.Minute},
		{"arc.receivers[0].reporting_time (DP2 primary)", c.ARC.Receivers[0].ReportingTime, 30 * time.Minute},
		{"arc.receivers[1].protocol", c.ARC.Receivers[1].Protocol, "udp"},
		{"arc.receivers[1].reporting_time (DP2 secondary)", c.ARC.Receivers[1].ReportingTime, 25 * time.Hour},
		{"arc.receivers[1].poll_interval (default: a quarter of 25h)", c.ARC.Receivers[1].PollInterval.D(), 25 * time.Hour / 4},
		{"arc.receivers[1].fail_after (default: half of 25h)", c.ARC.Receivers[1].FailAfter.D(), 25 * time.Hour / 2},
		{"arc.retries", *c.ARC.Retries, 3},
		{"arc.test_interval", c.ARC.TestInterval.D(), 12 * time.Hour},
		{"arc.codes", c.ARC.Codes["robbery/gas"], 123},
		{"incidents.retention", c.Incidents.Retention.D(), 14 * 24 * time.Hour},
		{"incidents.max_resolved", c.Incidents.MaxResolved, 200},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if c.Role("center_manager") == nil || c.Input("box-tamper") == nil || c.Output("siren") == nil || c.Playbook("robbery") == nil {
		t.Error("Role, Input, Output or Playbook lookup failed")
	}
}

// TestGoodConfigSetsEveryField keeps good.yaml complete: a field added to
// Config must be added there too.
func TestGoodConfigSetsEveryField(t *testing.T) {
	// Fields good.yaml cannot set, and why.
	skip := map[string]string{
		"mqtt.listen": "only with broker: embedded (configs/demo.yaml sets it)",
		"probe.url":   "url or address, not both: good.yaml sets address (test/plan_day_test.go sets url)",
	}
	data, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode: // list items share one path
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := strings.TrimPrefix(path+"."+n.Content[i].Value, ".")
				set[p] = true
				walk(n.Content[i+1], p)
			}
		}
	}
	walk(&root, "")
	for _, f := range yamlFields(reflect.TypeFor[config.Config](), "") {
		if !set[f] && skip[f] == "" {
			t.Errorf("testdata/good.yaml does not set %s", f)
		}
	}
}

// yamlFields lists the dotted YAML paths of t's fields; list items share
// their list's path.
func yamlFields(t reflect.Type, prefix string) []string {
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		p := strings.TrimPrefix(prefix+"."+name, ".")
		out = append(out, p)
		ft := f.Type
		for ft.Kind() == reflect.Slice || ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			out = append(out, yamlFields(ft, p)...)
		}
	}
	return out
}

// invalidConfigs holds, for each testdata/invalid-<rule>.yaml, the exact
// error Load gives: one rule per file, so each file has one error.
var invalidConfigs = []struct {
	file, want string
}{
	// Decoding: strict, so a typo is an error and not a silent default.
	{"invalid-unknown-field.yaml", `testdata/invalid-unknown-field.yaml:6: sirens: unknown field`},
	{"invalid-unknown-field-nested.yaml", `testdata/invalid-unknown-field-nested.yaml:11: inputs[0].pull: unknown field`},
	{"invalid-wrong-type.yaml", "testdata/invalid-wrong-type.yaml:7: queue.surge_length: cannot unmarshal `many` into int"},
	{"invalid-duration.yaml", `testdata/invalid-duration.yaml:7: smoke.verify_window: bad duration "30 seconds" (want e.g. 30s, 5m, 2d)`},
	{"invalid-yaml.yaml", `testdata/invalid-yaml.yaml:8: mapping values are not allowed in this context`},

	// Hall (§3.3 1: the report names the hall and its location).
	{"invalid-hall-id-missing.yaml", `testdata/invalid-hall-id-missing.yaml:2: hall.id: required`},
	{"invalid-hall-id.yaml", `testdata/invalid-hall-id.yaml:3: hall.id: "Hall 1" must be lower-case letters, digits, '-' or '_' (it is used in MQTT topics)`},
	{"invalid-hall-name.yaml", `testdata/invalid-hall-name.yaml:2: hall.name: required (§3.3 1: the report names the hall)`},
	{"invalid-hall-location.yaml", `testdata/invalid-hall-location.yaml:2: hall.location: required (§3.3 1: the report gives the hall's location)`},
	{"invalid-backend.yaml", `testdata/invalid-backend.yaml:3: backend: unknown backend "wiringpi" (want one of gpiocdev, periph, sim)`},
	{"invalid-gpio-debounce.yaml", `testdata/invalid-gpio-debounce.yaml:7: gpio.debounce: unknown mode "hardware" (want software or kernel)`},
	{"invalid-event-buffer.yaml", `testdata/invalid-event-buffer.yaml:7: gpio.event_buffer: must not be negative`},

	// Ids, shared by inputs, outputs and roles.
	{"invalid-id-missing.yaml", `testdata/invalid-id-missing.yaml:7: inputs[0].id: required`},
	{"invalid-id-format.yaml", `testdata/invalid-id-format.yaml:7: inputs[0].id: "Box Tamper" must be lower-case letters, digits, '-' or '_'`},
	{"invalid-id-duplicate.yaml", `testdata/invalid-id-duplicate.yaml:11: outputs[0].id: id "siren" already used by inputs[0]`},

	// Lines.
	{"invalid-line-neither.yaml", `testdata/invalid-line-neither.yaml:7: inputs[0].line: a line is required: give line (offset) or line_name`},
	{"invalid-line-both.yaml", `testdata/invalid-line-both.yaml:9: inputs[0].line: give line or line_name, not both`},
	{"invalid-line-negative.yaml", `testdata/invalid-line-negative.yaml:9: inputs[0].line: offset -1 must not be negative`},
	{"invalid-periph-offset.yaml", `testdata/invalid-periph-offset.yaml:9: inputs[0].line: the periph backend chooses lines by name: use line_name`},
	{"invalid-line-twice.yaml", `testdata/invalid-line-twice.yaml:14: inputs[1].line: gpiochip0 line 17 is already used by inputs[0]`},
	{"invalid-line-twice-output.yaml", `testdata/invalid-line-twice-output.yaml:13: outputs[0].line: gpiochip0 line 17 is already used by inputs[0]`},
	{"invalid-line-name-twice.yaml", `testdata/invalid-line-name-twice.yaml:14: inputs[1].line_name: line_name PANIC is already used by inputs[0]`},

	// Inputs.
	{"invalid-kind.yaml", `testdata/invalid-kind.yaml:8: inputs[0].kind: unknown kind "flood" (want one of panic, smoke, callpoint, counter, tamper, generic)`},
	{"invalid-panic-variant-missing.yaml", `testdata/invalid-panic-variant-missing.yaml:7: inputs[0].variant: a panic input needs a variant: armed (§4.3(a)), explosive (§4.3(b)) or gas (§4.3(c))`},
	{"invalid-panic-variant.yaml", `testdata/invalid-panic-variant.yaml:9: inputs[0].variant: unknown variant "knife" (want armed, explosive or gas)`},
	{"invalid-variant-not-panic.yaml", `testdata/invalid-variant-not-panic.yaml:9: inputs[0].variant: only panic inputs take a variant`},
	{"invalid-counter-direction.yaml", `testdata/invalid-counter-direction.yaml:7: inputs[0].direction: a counter input needs direction in (arrivals) or out (departures)`},
	{"invalid-direction-not-counter.yaml", `testdata/invalid-direction-not-counter.yaml:9: inputs[0].direction: only counter inputs take a direction`},
	{"invalid-playbook-not-generic.yaml", `testdata/invalid-playbook-not-generic.yaml:10: inputs[0].playbook: only generic inputs are mapped to a manual playbook`},
	{"invalid-bias.yaml", `testdata/invalid-bias.yaml:10: inputs[0].bias: unknown bias "pull-sideways" (want pull-up, pull-down, disabled or as-is)`},
	{"invalid-contact.yaml", `testdata/invalid-contact.yaml:10: inputs[0].contact: unknown contact "open" (want NO or NC)`},
	{"invalid-debounce.yaml", `testdata/invalid-debounce.yaml:11: inputs[0].debounce: 2s is too long: a panic press must not wait on it (at most 1s)`},
	{"invalid-zone.yaml", `testdata/invalid-zone.yaml:11: inputs[0].zone: "Vault Room" must be lower-case letters, digits, '-' or '_'`},
	{"invalid-zone-input-id.yaml", `testdata/invalid-zone-input-id.yaml:15: inputs[1].zone: "panic-1" is also an input id: a walk test could not tell them apart`},
	{"invalid-stuck-after.yaml", `testdata/invalid-stuck-after.yaml:11: inputs[0].stuck_after: 500ms is too short (at least 1s, or 0 to disable)`},

	// Outputs.
	{"invalid-fail-safe-missing.yaml", `testdata/invalid-fail-safe-missing.yaml:7: outputs[0].fail_safe: required: the level (inactive or active) the output takes at start, at stop and on failure`},
	{"invalid-fail-safe.yaml", `testdata/invalid-fail-safe.yaml:9: outputs[0].fail_safe: unknown level "off" (want inactive or active)`},
	{"invalid-audible-silent-ok.yaml", `testdata/invalid-audible-silent-ok.yaml:11: outputs[0].silent_ok: an audible output can never be silent_ok (§4.3: robbery is silent)`},

	// Smoke verification (§4.4).
	{"invalid-smoke-verify.yaml", `testdata/invalid-smoke-verify.yaml:7: smoke.verify: unknown mode "vote" (want persist, retrigger or none)`},
	{"invalid-smoke-verify-window.yaml", `testdata/invalid-smoke-verify-window.yaml:12: smoke.verify_window: 10m0s is too long for alarm verification (at most 5m)`},

	// Queue (§4.1).
	{"invalid-queue-negative.yaml", `testdata/invalid-queue-negative.yaml:7: queue.surge_length: queue thresholds must not be negative`},
	{"invalid-clear-length.yaml", `testdata/invalid-clear-length.yaml:8: queue.clear_length: 30 must be below surge_length 30 (hysteresis)`},
	{"invalid-clear-rate.yaml", `testdata/invalid-clear-rate.yaml:8: queue.clear_rate: 8 must be below surge_rate 6 (hysteresis)`},
	{"invalid-daily-reset.yaml", `testdata/invalid-daily-reset.yaml:7: queue.daily_reset: "24:00" is not a time of day HH:MM`},

	// MQTT.
	{"invalid-mqtt-listen-hostport.yaml", `testdata/invalid-mqtt-listen-hostport.yaml:8: mqtt.listen: "127.0.0.1" is not host:port`},
	{"invalid-mqtt-listen-loopback.yaml", `testdata/invalid-mqtt-listen-loopback.yaml:8: mqtt.listen: the embedded broker listens on loopback only, not "0.0.0.0"`},
	{"invalid-mqtt-listen-external.yaml", `testdata/invalid-mqtt-listen-external.yaml:8: mqtt.listen: only the embedded broker listens; remove it or set broker: embedded`},
	{"invalid-broker-url.yaml", `testdata/invalid-broker-url.yaml:7: mqtt.broker: "center.example" is not embedded or a URL such as tcp://host:1883 or ssl://host:8883`},
	{"invalid-broker-scheme.yaml", `testdata/invalid-broker-scheme.yaml:7: mqtt.broker: unsupported scheme "https" (want tcp, ssl, tls, mqtt or mqtts)`},
	{"invalid-topic-prefix.yaml", `testdata/invalid-topic-prefix.yaml:7: mqtt.topic_prefix: "halls/#" must not contain + or # nor start or end with /`},
	{"invalid-tls-cert-without-key.yaml", `testdata/invalid-tls-cert-without-key.yaml:8: mqtt.tls.key_file: cert_file and key_file go together`},
	{"invalid-password-without-username.yaml", `testdata/invalid-password-without-username.yaml:6: mqtt.username: password_file given without a username`},

	// HTTP.
	{"invalid-http-listen.yaml", `testdata/invalid-http-listen.yaml:7: http.listen: "localhost" is not host:port`},
	{"invalid-http-local-listen-lan.yaml", `testdata/invalid-http-local-listen-lan.yaml:7: http.local_listen: "0.0.0.0:9465" is reachable from the network: the console, /api/* and reload need a loopback address, or http.local_tls with cert_file, key_file and client_ca_file`},
	{"invalid-http-local-listen-tls-only.yaml", `testdata/invalid-http-local-listen-tls-only.yaml:8: http.local_tls: cert_file, key_file and client_ca_file go together (TLS and client certificates)`},
	{"invalid-http-local-listen-same.yaml", `testdata/invalid-http-local-listen-same.yaml:8: http.local_listen: "127.0.0.1:9464" is http.listen too: the two listeners need their own addresses`},
	{"invalid-console-staff-label.yaml", `testdata/invalid-console-staff-label.yaml:10: console.staff[1].label: "Teller" is shown for two people`},

	// Commands from the center (the HMAC that lets only the center resolve
	// a robbery, §4.3).
	{"invalid-commands-key-file-missing.yaml", `testdata/invalid-commands-key-file-missing.yaml:6: commands.key_file: required with auth: hmac (the shared key for command signatures)`},
	{"invalid-commands-key-file-unused.yaml", `testdata/invalid-commands-key-file-unused.yaml:8: commands.key_file: auth is none: the key file would be ignored`},
	{"invalid-commands-auth.yaml", `testdata/invalid-commands-auth.yaml:7: commands.auth: unknown auth "password" (want ed25519, hmac or none)`},
	{"invalid-commands-window.yaml", `testdata/invalid-commands-window.yaml:8: commands.window: 2h0m0s is out of range (10s to 1h)`},
	{"invalid-ack-topic.yaml", `testdata/invalid-ack-topic.yaml:8: mqtt.ack_topic: "center/+" must be a topic under the hall's root, without + or # (e.g. cmd/received)`},
	{"invalid-ack-timeout.yaml", `testdata/invalid-ack-timeout.yaml:9: mqtt.ack_timeout: 1s is too short (at least 5s)`},
	{"invalid-discovery-prefix.yaml", `testdata/invalid-discovery-prefix.yaml:8: mqtt.discovery.prefix: "home/#" must not contain + or # nor start or end with /`},
	{"invalid-journal-retention.yaml", `testdata/invalid-journal-retention.yaml:8: journal.retention: 168h0m0s is too short to keep incident records (§3.5: at least 30d, or 0 to keep forever)`},
	{"invalid-journal-head-interval.yaml", `testdata/invalid-journal-head-interval.yaml:8: journal.head_interval: 100ms is too short (at least 1s)`},
	{"invalid-journal-outbox-retention.yaml", `testdata/invalid-journal-outbox-retention.yaml:8: journal.outbox_retention: 10m0s is too short (at least 1h)`},
	{"invalid-journal-report-budget.yaml", `testdata/invalid-journal-report-budget.yaml:8: journal.report_budget: 5m0s is out of range (10ms to 10s; §3.2: reported without delay)`},
	{"invalid-commands-max-payload.yaml", `testdata/invalid-commands-max-payload.yaml:8: commands.max_payload: 100 is out of range (512 to 1048576 bytes)`},

	// Careless configs are refused, not run (issue #12 §6). The files the
	// rules look at are made by TestMain with the modes they need.
	{"invalid-broker-plain-credentials.yaml", `testdata/invalid-broker-plain-credentials.yaml:8: mqtt.broker: tcp://10.1.2.3:1883 is plain TCP to a host that is not loopback: the username and password would cross the network in clear (use ssl://)`},
	{"invalid-commands-auth-none-real-backend.yaml", `testdata/invalid-commands-auth-none-real-backend.yaml:6: commands.auth: none accepts unsigned commands: allowed with backend sim only (a test bench), not gpiocdev`},
	{"invalid-commands-key-file-absent.yaml", `testdata/invalid-commands-key-file-absent.yaml:7: commands.key_file: testdata/no-such.key does not exist`},
	{"invalid-commands-key-file-mode.yaml", `testdata/invalid-commands-key-file-mode.yaml:6: commands.key_file: testdata/group-readable.key has mode 0640: a secret must be the owner's alone (chmod 600)`},
	{"invalid-commands-key-short.yaml", `testdata/invalid-commands-key-short.yaml:7: commands.key_file: testdata/short.key: bad key: 31 bytes is too short (at least 32)`},
	{"invalid-commands-demo-key.yaml", `testdata/invalid-commands-demo-key.yaml:6: commands.key_file: testdata/demo-command.key is the public demo key of the hallguard repository: make this hall's own with hallguard keygen`},
	{"invalid-commands-ed25519-key.yaml", `testdata/invalid-commands-ed25519-key.yaml:8: commands.key_file: testdata/command.key: bad key: no PEM PUBLIC KEY block`},
	{"invalid-password-file-absent.yaml", `testdata/invalid-password-file-absent.yaml:10: mqtt.password_file: testdata/no-such-password does not exist`},
	{"invalid-tls-ca-file-absent.yaml", `testdata/invalid-tls-ca-file-absent.yaml:9: mqtt.tls.ca_file: testdata/no-such-ca.pem does not exist`},
	{"invalid-state-dir-mode.yaml", `testdata/invalid-state-dir-mode.yaml:6: state_dir: testdata/state-group-readable has mode 0750: the journal's folder must be the daemon's alone (chmod 700)`},
	{"invalid-commands-public-key-writable.yaml", `testdata/invalid-commands-public-key-writable.yaml:7: commands.key_file: testdata/writable.pub has mode 0662: others could replace the center's key (chmod 644)`},
	{"invalid-several-documents.yaml", `testdata/invalid-several-documents.yaml:8: a config is one YAML document; a second one starts here`},

	// Playbooks and what they refer to. The role error is in the playbook's
	// file, at its line.
	{"invalid-escalation-role.yaml", `testdata/playbooks-min/robbery.yaml:14: escalation[1].role: role "general_manager" is not defined in testdata/invalid-escalation-role.yaml (roles:)`},
	{"invalid-input-playbook-unknown.yaml", `testdata/invalid-input-playbook-unknown.yaml:10: inputs[0].playbook: no playbook "flood" in playbooks-min`},
	{"invalid-input-playbook-not-manual.yaml", `testdata/invalid-input-playbook-not-manual.yaml:10: inputs[0].playbook: playbook "robbery" is not manual`},
	{"invalid-playbook-missing.yaml", `testdata/invalid-playbook-missing.yaml:4: playbooks_dir: no "robbery" playbook: the plan's §4 needs it`},
	{"invalid-playbooks-dir.yaml", `testdata/invalid-playbooks-dir.yaml:4: playbooks_dir: no playbook files (*.yaml) in testdata/no-such-folder`},

	// The staff console (daemon/console): PINs only as hashes, wrong PINs
	// limited, the duress PIN's silent playbook present (§4.3).
	{"invalid-console-staff-name.yaml", `testdata/invalid-console-staff-name.yaml:9: console.staff[0].name: required (actions are recorded under it)`},
	{"invalid-console-staff-duplicate.yaml", `testdata/invalid-console-staff-duplicate.yaml:10: console.staff[1].name: "Chen Jing" is listed twice`},
	{"invalid-console-pin-hash.yaml", "testdata/invalid-console-pin-hash.yaml:10: console.staff[0].pin_hash: not a PIN hash: want pbkdf2-sha256$<iterations>$<salt>$<hash> as `hallguard pin` prints it (never the PIN itself)"},
	{"invalid-console-pin-iterations.yaml", `testdata/invalid-console-pin-iterations.yaml:10: console.staff[0].pin_hash: 1000 iterations is too few (at least 10000)`},
	{"invalid-console-max-pin-failures.yaml", `testdata/invalid-console-max-pin-failures.yaml:8: console.max_pin_failures: 1000 is out of range (1 to 100)`},
	{"invalid-console-lockout.yaml", `testdata/invalid-console-lockout.yaml:8: console.lockout: 1s is out of range (10s to 24h)`},
	{"invalid-console-duress-playbook.yaml", `testdata/invalid-console-duress-playbook.yaml:8: console.duress_pin_hash: needs a silent, manual "duress" playbook in playbooks-min (§4.3)`},

	// Review (§3.4), the business-system probe (§4.2), CCTV bookmarks.
	{"invalid-review-topic.yaml", `testdata/invalid-review-topic.yaml:8: review.topic: "#" must be a topic under the hall's root, without + or # (e.g. reviews)`},
	{"invalid-review-due-after.yaml", `testdata/invalid-review-due-after.yaml:8: review.due_after: 8760h0m0s is out of range (1d to 90d)`},
	{"invalid-probe-url.yaml", `testdata/invalid-probe-url.yaml:8: probe.url: "ftp://core.example/health" is not an http:// or https:// URL`},
	{"invalid-probe-both.yaml", `testdata/invalid-probe-both.yaml:9: probe.address: give url or address, not both`},
	{"invalid-probe-timeout.yaml", `testdata/invalid-probe-timeout.yaml:10: probe.timeout: 30s must be above 0 and below interval 10s`},
	{"invalid-probe-failures.yaml", `testdata/invalid-probe-failures.yaml:9: probe.failures: 50 is out of range (1 to 20)`},

	// arc: the DC-09 link to the alarm receiving centre
	{"invalid-arc-account.yaml", `testdata/invalid-arc-account.yaml:8: arc.account: "12G4" must be 3 to 16 hex digits`},
	{"invalid-arc-prefix.yaml", `testdata/invalid-arc-prefix.yaml:10: arc.line: "L1" must be 1 to 6 hex digits`},
	{"invalid-arc-category-missing.yaml", `testdata/invalid-arc-category-missing.yaml:7: arc.category: required: the EN 50136 category (SP1-SP6, DP1-DP4) sets the supervision and reporting times`},
	{"invalid-arc-category.yaml", `testdata/invalid-arc-category.yaml:9: arc.category: unknown EN 50136 category "SP9" (want SP1-SP6 or DP1-DP4)`},
	{"invalid-arc-receivers-missing.yaml", `testdata/invalid-arc-receivers-missing.yaml:7: arc.receivers: at least one receiver is required`},
	{"invalid-arc-receiver-address.yaml", `testdata/invalid-arc-receiver-address.yaml:12: arc.receivers[0].address: "arc.example" is not host:port`},
	{"invalid-arc-receiver-protocol.yaml", `testdata/invalid-arc-receiver-protocol.yaml:13: arc.receivers[0].protocol: unknown protocol "sctp" (want tcp or udp)`},
	{"invalid-arc-receiver-name.yaml", `testdata/invalid-arc-receiver-name.yaml:13: arc.receivers[1].name: name "primary" already used by arc.receivers[0]`},
	{"invalid-arc-reporting-time.yaml", `testdata/invalid-arc-reporting-time.yaml:14: arc.receivers[0].fail_after: fail_after 2m0s + poll_interval 1m0s + ack_timeout 10s is more than the SP4 reporting time 3m0s (EN 50136-1): a failed path would be reported late`},
	{"invalid-arc-poll-interval.yaml", `testdata/invalid-arc-poll-interval.yaml:13: arc.receivers[0].poll_interval: 500ms is too short (at least 1s)`},
	{"invalid-arc-retries.yaml", `testdata/invalid-arc-retries.yaml:13: arc.retries: 20 is out of range (0 to 10)`},
	{"invalid-arc-ack-timeout.yaml", `testdata/invalid-arc-ack-timeout.yaml:13: arc.ack_timeout: 2m0s is out of range (100ms to 1m)`},
	{"invalid-arc-test-interval.yaml", `testdata/invalid-arc-test-interval.yaml:13: arc.test_interval: 30s is out of range (1m to 32d)`},
	{"invalid-arc-unmapped.yaml", `testdata/invalid-arc-unmapped.yaml:13: arc.unmapped: unknown policy "drop" (want skip or sia_text)`},
	{"invalid-arc-code.yaml", `testdata/invalid-arc-code.yaml:14: arc.codes.robbery: 99 is not a Contact ID event code (100 to 999)`},
	{"invalid-arc-code-playbook.yaml", `testdata/invalid-arc-code-playbook.yaml:14: arc.codes.flood: no playbook "flood"`},
	{"invalid-incidents-retention.yaml", `testdata/invalid-incidents-retention.yaml:8: incidents.retention: 5m0s is out of range (1h to 90d)`},
	{"invalid-incidents-max-resolved.yaml", `testdata/invalid-incidents-max-resolved.yaml:8: incidents.max_resolved: 20000 is out of range (10 to 1000)`},
	{"invalid-cctv-payload.yaml", `testdata/invalid-cctv-payload.yaml:9: cctv.payload: not a template: template: cctv:1: unclosed action`},
	{"invalid-cctv-reply-topic.yaml", `testdata/invalid-cctv-reply-topic.yaml:9: cctv.reply_topic: "cctv/#" must be a topic under the hall's root, without + or #, other than cctv.topic (e.g. cctv/reply)`},
}

// TestMain gives the fixtures the modes git cannot record: secrets the
// owner's alone, except the one that must look careless, and a state
// folder the group can read.
func TestMain(m *testing.M) {
	for f, mode := range map[string]os.FileMode{
		"testdata/command.key": 0o600, "testdata/short.key": 0o600, "testdata/demo-command.key": 0o600,
		"testdata/tls/hall-07.key": 0o600, "testdata/group-readable.key": 0o640,
		"testdata/center.pub": 0o644, "testdata/writable.pub": 0o662,
	} {
		if err := os.Chmod(f, mode); err != nil {
			panic(err)
		}
	}
	if err := os.MkdirAll("testdata/state-group-readable", 0o750); err != nil {
		panic(err)
	}
	if err := os.Chmod("testdata/state-group-readable", 0o750); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// TestCarelessConfigWarns: on a simulated hall (a demo or a test bench) a
// key the group can read is a warning, not an error.
func TestCarelessConfigWarns(t *testing.T) {
	c, err := config.Load("testdata/careless-sim.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := `testdata/careless-sim.yaml:6: commands.key_file: warning: testdata/group-readable.key has mode 0640: a secret must be the owner's alone (chmod 600)`
	if got := c.Warnings.Error(); got != want {
		t.Errorf("warnings:\n got: %s\nwant: %s", got, want)
	}
}

// TestEd25519ConfigLoads: a real hall holding only the center's public
// key (readable by all: it is not a secret).
func TestEd25519ConfigLoads(t *testing.T) {
	c, err := config.Load("testdata/ed25519.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Commands.Auth != "ed25519" || len(c.Warnings) != 0 {
		t.Errorf("auth %q, warnings %v", c.Commands.Auth, c.Warnings)
	}
}

// TestConfigOverOneMiBIsRefused: a config is read whole; past 1 MiB it is
// refused before it is parsed.
func TestConfigOverOneMiBIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
	data := []byte("# padding\n" + strings.Repeat("#"+strings.Repeat("x", 1023)+"\n", 1024))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path)
	want := path + ": 1049610 bytes is over the 1 MiB a config may hold"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

// TestErrorsNeverQuoteSecrets: given a key or password file as its config
// (a slip of the installer's), check must not print the secret.
func TestErrorsNeverQuoteSecrets(t *testing.T) {
	dir := t.TempDir()
	for name, secret := range map[string]string{
		"hmac.key":      "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90\n",
		"mqtt-password": "correct horse battery staple\n",
		"two-lines.txt": "hunter2: and more\nsecond: line\n",
		"ed25519.pem":   "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIHh0cmVtZWx5IHNlY3JldCBzZWVkIGJ5dGVzIGhlcmU=\n-----END PRIVATE KEY-----\n",
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := config.Load(path)
		if err == nil {
			t.Errorf("%s loaded as a config", name)
			continue
		}
		for _, line := range strings.Split(strings.TrimSpace(secret), "\n") {
			for _, word := range strings.Fields(strings.NewReplacer(":", " ", "-", " ").Replace(line)) {
				if len(word) >= 6 && word != "PRIVATE" && strings.Contains(err.Error(), word) {
					t.Errorf("%s: error quotes %q from the file:\n%v", name, word, err)
				}
			}
		}
	}
}

func TestInvalidConfigs(t *testing.T) {
	for _, tc := range invalidConfigs {
		t.Run(strings.TrimSuffix(tc.file, ".yaml"), func(t *testing.T) {
			c, err := config.Load(filepath.Join("testdata", tc.file))
			if err == nil {
				t.Fatalf("testdata/%s loaded; want error\n%s", tc.file, tc.want)
			}
			if c != nil {
				t.Errorf("testdata/%s: got a config along with the error", tc.file)
			}
			var es config.Errors
			if !errors.As(err, &es) {
				t.Errorf("testdata/%s: error is %T, want config.Errors", tc.file, err)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("testdata/%s:\n got: %s\nwant: %s", tc.file, got, tc.want)
			}
		})
	}
}

// TestInvalidConfigsListed keeps testdata and the table in step.
func TestInvalidConfigsListed(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid-*.yaml")
	var listed []string
	for _, tc := range invalidConfigs {
		listed = append(listed, filepath.Join("testdata", tc.file))
	}
	for _, f := range files {
		if !slices.Contains(listed, f) {
			t.Errorf("%s has no entry in invalidConfigs", f)
		}
	}
	for _, f := range listed {
		if !slices.Contains(files, f) {
			t.Errorf("invalidConfigs lists %s, which does not exist", f)
		}
	}
}

func TestManyErrors(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
	}{
		{
			// Decoding goes on past the first problem.
			file: "decode-errors.yaml",
			want: []string{
				"testdata/decode-errors.yaml:6: inputs[0].debounce: bad duration \"fast\" (want e.g. 30s, 5m, 2d)",
				"testdata/decode-errors.yaml:7: inputs[0].colour: unknown field",
				"testdata/decode-errors.yaml:9: queue.surge_length: cannot unmarshal `lots` into int",
			},
		},
		{
			// Validation reports every rule broken, the playbooks' too.
			file: "many-errors.yaml",
			want: []string{
				`testdata/many-errors.yaml:2: hall.name: required (§3.3 1: the report names the hall)`,
				`testdata/many-errors.yaml:7: inputs[0].variant: a panic input needs a variant: armed (§4.3(a)), explosive (§4.3(b)) or gas (§4.3(c))`,
				`testdata/many-errors.yaml:13: inputs[1].line: gpiochip0 line 17 is already used by inputs[0]`,
				`testdata/many-errors.yaml:15: outputs[0].fail_safe: required: the level (inactive or active) the output takes at start, at stop and on failure`,
				`testdata/many-errors.yaml:19: queue.clear_length: 40 must be below surge_length 30 (hysteresis)`,
				`testdata/playbooks-min/robbery.yaml:14: escalation[1].role: role "general_manager" is not defined in testdata/many-errors.yaml (roles:)`,
			},
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := config.Load(filepath.Join("testdata", tc.file))
			var es config.Errors
			if !errors.As(err, &es) {
				t.Fatalf("testdata/%s: error %v (%T), want config.Errors", tc.file, err, err)
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("testdata/%s:\n got:\n%s\nwant:\n%s", tc.file, got, want)
			}
		})
	}
}

// TestPlaybookErrorsCarryLines: errors found in a playbook after loading
// (an escalation role the config lacks) and duplicate playbook ids name the
// playbook file and a line in it.
func TestPlaybookErrorsCarryLines(t *testing.T) {
	check := func(name string, err error) {
		t.Helper()
		var es config.Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("%s: error %v, want config.Errors", name, err)
		}
		for _, e := range es {
			if e.Line == 0 || !strings.Contains(e.File, "playbooks-") {
				t.Errorf("%s: %q has no line in a playbook file", name, e)
			}
		}
	}
	_, err := config.Load("testdata/invalid-escalation-role.yaml")
	check("escalation role", err)
	_, errs := config.LoadPlaybooks("testdata/playbooks-invalid-duplicate-id")
	check("duplicate id", errs)
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "0", want: 0},
		{in: "0s", want: 0},
		{in: "30s", want: 30 * time.Second},
		{in: "20ms", want: 20 * time.Millisecond},
		{in: "5m", want: 5 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "2d", want: 48 * time.Hour},
		{in: "90d", want: 90 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: " 5m ", want: 5 * time.Minute},
		{in: "", err: `bad duration "" (want e.g. 30s, 5m, 2d)`},
		{in: "5", err: `bad duration "5" (want e.g. 30s, 5m, 2d)`},
		{in: "soon", err: `bad duration "soon" (want e.g. 30s, 5m, 2d)`},
		{in: "5 m", err: `bad duration "5 m" (want e.g. 30s, 5m, 2d)`},
		{in: "d", err: `bad duration "d" (want e.g. 30s, 5m, 2d)`},
		{in: "2dx", err: `bad duration "2dx" (want e.g. 30s, 5m, 2d)`},
		{in: "1d2d", err: `bad duration "1d2d" (want e.g. 30s, 5m, 2d)`},
		{in: "-5s", err: `negative duration "-5s"`},
		{in: "1d-1h", err: `negative duration "1d-1h"`},
		{in: "106752d", err: `duration "106752d" is too long`},
		{in: "106751d24h", err: `duration "106751d24h" is too long`},
		{in: "99999999999999999999d", err: `duration "99999999999999999999d" is too long`},
	} {
		got, err := config.ParseDuration(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("ParseDuration(%q): %v", tc.in, err)
		case tc.err == "" && got != tc.want:
			t.Errorf("ParseDuration(%q) = %v, want %v", tc.in, got, tc.want)
		case tc.err != "" && err == nil:
			t.Errorf("ParseDuration(%q) = %v, want error %q", tc.in, got, tc.err)
		case tc.err != "" && err.Error() != tc.err:
			t.Errorf("ParseDuration(%q): error %q, want %q", tc.in, err, tc.err)
		}
	}
}

func TestFieldError(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    config.FieldError
		want string
	}{
		{"full", config.FieldError{File: "a.yaml", Line: 3, Field: "hall.id", Msg: "required"}, "a.yaml:3: hall.id: required"},
		{"no line", config.FieldError{File: "a.yaml", Field: "steps", Msg: "a playbook needs steps"}, "a.yaml: steps: a playbook needs steps"},
		{"no field", config.FieldError{File: "a.yaml", Line: 8, Msg: "mapping values are not allowed in this context"}, "a.yaml:8: mapping values are not allowed in this context"},
		{"file only", config.FieldError{File: "a.yaml", Msg: "open a.yaml: no such file or directory"}, "a.yaml: open a.yaml: no such file or directory"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := config.Load("testdata/no-such-file.yaml")
	var es config.Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].File != "testdata/no-such-file.yaml" {
		t.Fatalf("error %v, want one FieldError naming the file", err)
	}
}

// TestARCCategoryDefaults: the EN 50136-1 category gives each receiver's
// reporting time (the primary's for the first, the secondary's for the
// others), and from it the poll interval (a quarter), the fail time (a
// half) and the ACK timeout (an eighth of the shortest, at most 10s), so a
// failed path is reported within the reporting time.
func TestARCCategoryDefaults(t *testing.T) {
	for _, tc := range []struct {
		cat                string
		primary, secondary time.Duration
		ack                time.Duration
	}{
		{"SP1", 32 * 24 * time.Hour, 32 * 24 * time.Hour, 10 * time.Second},
		{"SP2", 25 * time.Hour, 25 * time.Hour, 10 * time.Second},
		{"SP3", 30 * time.Minute, 30 * time.Minute, 10 * time.Second},
		{"SP4", 180 * time.Second, 180 * time.Second, 10 * time.Second},
		{"SP5", 90 * time.Second, 90 * time.Second, 10 * time.Second},
		{"SP6", 20 * time.Second, 20 * time.Second, 20 * time.Second / 8},
		{"DP1", 25 * time.Hour, 25 * time.Hour, 10 * time.Second},
		{"DP2", 30 * time.Minute, 25 * time.Hour, 10 * time.Second},
		{"DP3", 180 * time.Second, 25 * time.Hour, 10 * time.Second},
		{"DP4", 90 * time.Second, 5 * time.Hour, 10 * time.Second},
	} {
		y := fmt.Sprintf(`hall: {id: hall-1, name: Test hall, location: 1 Test Road}
backend: sim
playbooks_dir: testdata/playbooks-min
roles: [{id: supervisor}, {id: center_manager}, {id: general_manager}]
commands: {auth: none}
arc:
  account: "1234"
  category: %s
  receivers:
    - {name: primary, address: "127.0.0.1:12000"}
    - {name: backup, address: "127.0.0.1:12001"}
`, tc.cat)
		c, err := config.Parse("arc.yaml", []byte(y))
		if err != nil {
			t.Fatalf("%s: %v", tc.cat, err)
		}
		a := c.ARC
		for i, want := range []time.Duration{tc.primary, tc.secondary} {
			r := a.Receivers[i]
			if r.ReportingTime != want || r.PollInterval.D() != want/4 || r.FailAfter.D() != want/2 || r.Protocol != "tcp" {
				t.Errorf("%s receivers[%d]: reporting %v poll %v fail %v %s; want %v, %v, %v, tcp", tc.cat, i,
					r.ReportingTime, r.PollInterval.D(), r.FailAfter.D(), r.Protocol, want, want/4, want/2)
			}
		}
		if a.AckTimeout.D() != tc.ack || *a.Retries != 2 || a.TestInterval.D() != 24*time.Hour || a.Unmapped != "skip" {
			t.Errorf("%s: ack_timeout %v retries %d test_interval %v unmapped %s", tc.cat, a.AckTimeout.D(), *a.Retries, a.TestInterval.D(), a.Unmapped)
		}
	}
}

// The errors of arc.codes, a map, are in file order: the same config gives
// the same errors every time (`hallguard check` does not flap).
func TestARCCodeErrorsInFileOrder(t *testing.T) {
	path := filepath.Join("testdata", "arc-codes-order.yaml")
	data := []byte(`hall: {id: hall-1, name: Test hall, location: 1 Test Road}
backend: sim
playbooks_dir: playbooks-min
roles: [{id: supervisor}, {id: center_manager}, {id: general_manager}]
commands: {auth: none}
arc:
  account: "1234"
  category: SP4
  receivers:
    - name: primary
      address: "127.0.0.1:12000"
  codes:
    robbery: 99
    fire: 98
    flood: 130
    besieged: 97
    quake: 131
`)
	want := strings.Join([]string{
		`testdata/arc-codes-order.yaml:13: arc.codes.robbery: 99 is not a Contact ID event code (100 to 999)`,
		`testdata/arc-codes-order.yaml:14: arc.codes.fire: 98 is not a Contact ID event code (100 to 999)`,
		`testdata/arc-codes-order.yaml:16: arc.codes.besieged: 97 is not a Contact ID event code (100 to 999)`,
		`testdata/arc-codes-order.yaml:15: arc.codes.flood: no playbook "flood"`,
		`testdata/arc-codes-order.yaml:16: arc.codes.besieged: no playbook "besieged"`,
		`testdata/arc-codes-order.yaml:17: arc.codes.quake: no playbook "quake"`,
	}, "\n")
	for i := 0; i < 20; i++ {
		_, err := config.Parse(path, data)
		if err == nil {
			t.Fatal("parsed; want errors")
		}
		if got := err.Error(); got != want {
			t.Fatalf("parse %d:\n got: %s\nwant: %s", i+1, got, want)
		}
	}
}
