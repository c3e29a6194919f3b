package config

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"
)

// ARC configures the SIA DC-09 link to an alarm receiving centre, the
// second reporting path beside MQTT (package arc). No receivers: no link.
type ARC struct {
	// Account is the hall's account number at the ARC (3-16 hex digits).
	Account string `yaml:"account"`
	// Receiver and Line are the optional DC-09 receiver number (R) and
	// line prefix (L), hex digits without their letter.
	Receiver string `yaml:"receiver"`
	Line     string `yaml:"line"`
	// KeyFile holds the AES-128/192/256 key as hex, relative to the config's
	// folder; it must be readable by its owner only. None: messages are sent
	// in clear.
	KeyFile string `yaml:"key_file"`
	// Category is the EN 50136-1 category, SP1-SP6 or DP1-DP4: it sets
	// each receiver's reporting time, and from it the supervision defaults.
	Category  string        `yaml:"category"`
	Receivers []ARCReceiver `yaml:"receivers"`
	// AckTimeout is the wait for an answer (default an eighth of the
	// shortest reporting time, at most 10s).
	AckTimeout Duration `yaml:"ack_timeout"`
	// Retries on a receiver before the next one is tried (default 2).
	Retries *int `yaml:"retries"`
	// TestInterval is the periodic test report (Contact ID 602) on each
	// receiver (default 24h).
	TestInterval Duration `yaml:"test_interval"`
	// Unmapped is what playbooks without a Contact ID do on this path:
	// skip (default: MQTT only) or sia_text (SIA DC-03 text events).
	Unmapped string `yaml:"unmapped"`
	// Codes overrides or adds a Contact ID per playbook ("besieged") or
	// per playbook and variant ("robbery/gas").
	Codes map[string]int `yaml:"codes"`
}

// ARCReceiver is one receiver, in the order tried: primary, then backup.
type ARCReceiver struct {
	Name     string `yaml:"name"`     // the metrics' path label
	Address  string `yaml:"address"`  // host:port
	Protocol string `yaml:"protocol"` // tcp (default) or udp
	// PollInterval of NULL supervision polls (default a quarter of the
	// reporting time) and FailAfter, the silence after which the path has
	// failed (default a half).
	PollInterval Duration `yaml:"poll_interval"`
	FailAfter    Duration `yaml:"fail_after"`
	// ReportingTime is the category's, for this receiver's place.
	ReportingTime time.Duration `yaml:"-"`
}

// Enabled says whether the DC-09 link is configured.
func (a ARC) Enabled() bool { return len(a.Receivers) > 0 || a.Account != "" || a.Category != "" }

// ATSCategory is an EN 50136-1 alarm transmission system category: the
// longest time in which the failure of a path must be reported, for the
// primary path and for the secondary (alternative) one.
type ATSCategory struct {
	Primary, Secondary time.Duration
}

// ATSCategories are the EN 50136-1:2012 categories (Table 4, reporting
// time of an ATP failure; README "Alarm receiving centre" gives the
// source). SP categories have one path: a backup receiver there gets the
// primary's time.
var ATSCategories = map[string]ATSCategory{
	"SP1": {32 * 24 * time.Hour, 32 * 24 * time.Hour},
	"SP2": {25 * time.Hour, 25 * time.Hour},
	"SP3": {30 * time.Minute, 30 * time.Minute},
	"SP4": {180 * time.Second, 180 * time.Second},
	"SP5": {90 * time.Second, 90 * time.Second},
	"SP6": {20 * time.Second, 20 * time.Second},
	"DP1": {25 * time.Hour, 25 * time.Hour},
	"DP2": {30 * time.Minute, 25 * time.Hour},
	"DP3": {180 * time.Second, 25 * time.Hour},
	"DP4": {90 * time.Second, 5 * time.Hour},
}

func (c *Config) applyARCDefaults() {
	a := &c.ARC
	if !a.Enabled() {
		return
	}
	if a.Retries == nil {
		n := 2
		a.Retries = &n
	}
	a.TestInterval = cmp.Or(a.TestInterval, Duration(24*time.Hour))
	a.Unmapped = cmp.Or(a.Unmapped, "skip")
	for i := range a.Receivers {
		a.Receivers[i].Protocol = cmp.Or(a.Receivers[i].Protocol, "tcp")
	}
	cat, ok := ATSCategories[a.Category]
	if !ok {
		return // validation says so; the times below depend on it
	}
	shortest := cat.Primary
	for i := range a.Receivers {
		r := &a.Receivers[i]
		r.ReportingTime = cat.Primary
		if i > 0 {
			r.ReportingTime = cat.Secondary
		}
		r.PollInterval = cmp.Or(r.PollInterval, Duration(r.ReportingTime/4))
		r.FailAfter = cmp.Or(r.FailAfter, Duration(r.ReportingTime/2))
		shortest = min(shortest, r.ReportingTime)
	}
	a.AckTimeout = cmp.Or(a.AckTimeout, Duration(min(10*time.Second, shortest/8)))
}

var (
	accountRe = regexp.MustCompile(`^[0-9A-Fa-f]{3,16}$`)
	prefixRe  = regexp.MustCompile(`^[0-9A-Fa-f]{1,6}$`)
)

func (c *Config) validateARC(v *validator) {
	a := c.ARC
	if !a.Enabled() {
		return
	}
	if !accountRe.MatchString(a.Account) {
		v.add("arc.account", "%q must be 3 to 16 hex digits", a.Account)
	}
	if a.Receiver != "" && !prefixRe.MatchString(a.Receiver) {
		v.add("arc.receiver", "%q must be 1 to 6 hex digits", a.Receiver)
	}
	if a.Line != "" && !prefixRe.MatchString(a.Line) {
		v.add("arc.line", "%q must be 1 to 6 hex digits", a.Line)
	}
	_, catOK := ATSCategories[a.Category]
	switch {
	case a.Category == "":
		v.add("arc.category", "required: the EN 50136 category (SP1-SP6, DP1-DP4) sets the supervision and reporting times")
	case !catOK:
		v.add("arc.category", "unknown EN 50136 category %q (want SP1-SP6 or DP1-DP4)", a.Category)
	}
	if len(a.Receivers) == 0 {
		v.add("arc.receivers", "at least one receiver is required")
	}
	if d := a.AckTimeout.D(); catOK && (d < 100*time.Millisecond || d > time.Minute) {
		v.add("arc.ack_timeout", "%s is out of range (100ms to 1m)", d)
	}
	names := map[string]string{}
	for i, r := range a.Receivers {
		f := fmt.Sprintf("arc.receivers[%d]", i)
		switch {
		case !idRe.MatchString(r.Name):
			v.add(f+".name", "%q must be lower-case letters, digits, '-' or '_' (it is the metrics' path label)", r.Name)
		case names[r.Name] != "":
			v.add(f+".name", "name %q already used by %s", r.Name, names[r.Name])
		default:
			names[r.Name] = f
		}
		if _, _, err := net.SplitHostPort(r.Address); err != nil {
			v.add(f+".address", "%q is not host:port", r.Address)
		}
		if r.Protocol != "tcp" && r.Protocol != "udp" {
			v.add(f+".protocol", "unknown protocol %q (want tcp or udp)", r.Protocol)
		}
		if !catOK {
			continue // the times are the category's
		}
		if r.PollInterval.D() < time.Second {
			v.add(f+".poll_interval", "%s is too short (at least 1s)", r.PollInterval.D())
			continue
		}
		if r.FailAfter.D() < r.PollInterval.D() {
			v.add(f+".fail_after", "%s is shorter than poll_interval %s: one late poll would fail the path", r.FailAfter.D(), r.PollInterval.D())
			continue
		}
		// A path is found failed at most one poll after fail_after, and
		// the last try takes up to ack_timeout (§3.2: no delay).
		if r.FailAfter.D()+r.PollInterval.D()+a.AckTimeout.D() > r.ReportingTime {
			v.add(f+".fail_after", "fail_after %s + poll_interval %s + ack_timeout %s is more than the %s reporting time %s (EN 50136-1): a failed path would be reported late",
				r.FailAfter.D(), r.PollInterval.D(), a.AckTimeout.D(), a.Category, r.ReportingTime)
		}
	}
	if a.Retries != nil && (*a.Retries < 0 || *a.Retries > 10) {
		v.add("arc.retries", "%d is out of range (0 to 10)", *a.Retries)
	}
	if d := a.TestInterval.D(); d < time.Minute || d > 32*24*time.Hour {
		v.add("arc.test_interval", "%s is out of range (1m to 32d)", d)
	}
	if a.Unmapped != "skip" && a.Unmapped != "sia_text" {
		v.add("arc.unmapped", "unknown policy %q (want skip or sia_text)", a.Unmapped)
	}
	for _, k := range v.codesInFileOrder(a.Codes) {
		if code := a.Codes[k]; code < 100 || code > 999 {
			v.add("arc.codes."+k, "%d is not a Contact ID event code (100 to 999)", code)
		}
	}
}

// validateARCPlaybooks checks that arc.codes names playbooks that exist.
func (c *Config) validateARCPlaybooks(v *validator) {
	for _, k := range v.codesInFileOrder(c.ARC.Codes) {
		pb, variant, _ := strings.Cut(k, "/")
		p := c.Playbook(pb)
		switch {
		case p == nil:
			v.add("arc.codes."+k, "no playbook %q", pb)
		case variant != "" && p.Variant(variant) == nil:
			v.add("arc.codes."+k, "playbook %s has no variant %q", pb, variant)
		}
	}
}

// codesInFileOrder returns arc.codes' keys in the order of the file, so
// that their errors are too (Errors), not in the map's random order.
func (v *validator) codesInFileOrder(codes map[string]int) []string {
	return slices.SortedFunc(maps.Keys(codes), func(a, b string) int {
		return cmp.Or(cmp.Compare(v.pos.line("arc.codes."+a), v.pos.line("arc.codes."+b)), strings.Compare(a, b))
	})
}
