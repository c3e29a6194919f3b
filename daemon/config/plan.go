package config

import (
	"cmp"
	"net"
	"net/url"
	"strings"
	"text/template"
	"time"
)

// Review configures the post-incident review (§3.4): where reviews go and
// how long an incident may stay unreviewed.
type Review struct {
	// Topic, under the hall's root, receives each review as
	// <topic>/<incident-id> for the Safety Supervision Department.
	// Default "reviews".
	Topic string `yaml:"topic"`
	// DueAfter is how long a resolved incident may wait for its review
	// before the supervisory condition review_overdue is raised.
	// Default 7d; 1d to 90d.
	DueAfter Duration `yaml:"due_after"`
}

// Probe configures the business-system health probe (§4.2). Give url (an
// http or https GET that must answer 2xx) or address (a TCP host:port
// that must accept a connection), or neither to disable the probe.
type Probe struct {
	URL     string `yaml:"url"`
	Address string `yaml:"address"`
	// Interval between checks (default 30s, 1s to 1h); Timeout of one
	// check (default 5s, below interval).
	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"`
	// Failures is how many checks in a row must fail before the §4.2
	// incident opens (default 3, 1 to 20); one success resolves it.
	Failures int `yaml:"failures"`
}

// Enabled says whether a probe is configured.
func (p Probe) Enabled() bool { return p.URL != "" || p.Address != "" }

// CCTV configures the video-recorder bookmark requested by a step with
// action preserve_cctv.
type CCTV struct {
	// Topic, under the hall's root, receives the bookmark request; empty
	// disables requests (the step is then only recorded).
	Topic string `yaml:"topic"`
	// Payload is a text/template of the request, with .ID (the request's
	// id, for the answer), .Incident, .Hall, .Playbook, .Step, .From and
	// .Until (RFC 3339). Default: a JSON object of these.
	Payload string `yaml:"payload"`
	// ReplyTopic, under the hall's root, is where the video system answers
	// a request with {"id": <the request's id>} (or {"incident", "step"}),
	// and "ok": false with a "detail" when it refuses. Empty: no answer is
	// expected, and the report says the bookmark is unconfirmed.
	ReplyTopic string `yaml:"reply_topic"`
	// ConfirmWithin is how long the video system has to answer once the
	// broker took the request (default 1m); then the report says the
	// bookmark is not confirmed.
	ConfirmWithin Duration `yaml:"confirm_within"`
	// Before and After widen the window: From is the incident's time less
	// Before, Until the request's time plus After. Defaults 5m and 30m.
	Before Duration `yaml:"before"`
	After  Duration `yaml:"after"`
}

// DefaultCCTVPayload is cctv.payload's default.
const DefaultCCTVPayload = `{"id":"{{.ID}}","incident":"{{.Incident}}","hall":"{{.Hall}}","playbook":"{{.Playbook}}","step":"{{.Step}}","from":"{{.From}}","until":"{{.Until}}"}`

func (c *Config) applyPlanDefaults() {
	c.Review.Topic = cmp.Or(c.Review.Topic, "reviews")
	c.Review.DueAfter = cmp.Or(c.Review.DueAfter, Duration(7*24*time.Hour))
	if c.Probe.Enabled() {
		c.Probe.Interval = cmp.Or(c.Probe.Interval, Duration(30*time.Second))
		c.Probe.Timeout = cmp.Or(c.Probe.Timeout, Duration(5*time.Second))
		c.Probe.Failures = cmp.Or(c.Probe.Failures, 3)
	}
	c.CCTV.Payload = cmp.Or(c.CCTV.Payload, DefaultCCTVPayload)
	c.CCTV.Before = cmp.Or(c.CCTV.Before, Duration(5*time.Minute))
	c.CCTV.After = cmp.Or(c.CCTV.After, Duration(30*time.Minute))
	c.CCTV.ConfirmWithin = cmp.Or(c.CCTV.ConfirmWithin, Duration(time.Minute))
}

func badSubtopic(t string) bool {
	return strings.ContainsAny(t, "+#") || strings.HasPrefix(t, "/") || strings.HasSuffix(t, "/")
}

func (c *Config) validatePlan(v *validator) {
	if badSubtopic(c.Review.Topic) {
		v.add("review.topic", "%q must be a topic under the hall's root, without + or # (e.g. reviews)", c.Review.Topic)
	}
	if d := c.Review.DueAfter.D(); d < 24*time.Hour || d > 90*24*time.Hour {
		v.add("review.due_after", "%s is out of range (1d to 90d)", d)
	}
	p := c.Probe
	switch {
	case p.URL != "" && p.Address != "":
		v.add("probe.address", "give url or address, not both")
	case p.URL != "":
		if u, err := url.Parse(p.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add("probe.url", "%q is not an http:// or https:// URL", p.URL)
		}
	case p.Address != "":
		if _, _, err := net.SplitHostPort(p.Address); err != nil {
			v.add("probe.address", "%q is not host:port", p.Address)
		}
	}
	if p.Enabled() {
		if d := p.Interval.D(); d < time.Second || d > time.Hour {
			v.add("probe.interval", "%s is out of range (1s to 1h)", d)
		} else if p.Timeout.D() <= 0 || p.Timeout.D() >= d {
			v.add("probe.timeout", "%s must be above 0 and below interval %s", p.Timeout.D(), d)
		}
		if p.Failures < 1 || p.Failures > 20 {
			v.add("probe.failures", "%d is out of range (1 to 20)", p.Failures)
		}
	}
	if c.CCTV.Topic != "" && badSubtopic(c.CCTV.Topic) {
		v.add("cctv.topic", "%q must be a topic under the hall's root, without + or # (e.g. cctv/bookmark)", c.CCTV.Topic)
	}
	if r := c.CCTV.ReplyTopic; r != "" && (badSubtopic(r) || r == c.CCTV.Topic) {
		v.add("cctv.reply_topic", "%q must be a topic under the hall's root, without + or #, other than cctv.topic (e.g. cctv/reply)", r)
	}
	if w := c.CCTV.ConfirmWithin.D(); w < time.Second || w > time.Hour {
		v.add("cctv.confirm_within", "%s is out of range (1s to 1h)", w)
	}
	if _, err := template.New("cctv").Option("missingkey=error").Parse(c.CCTV.Payload); err != nil {
		v.add("cctv.payload", "not a template: %v", err)
	}
	if c.CCTV.Before.D() < 0 || c.CCTV.Before.D() > 24*time.Hour {
		v.add("cctv.before", "%s is out of range (0 to 24h)", c.CCTV.Before.D())
	}
	if c.CCTV.After.D() < 0 || c.CCTV.After.D() > 24*time.Hour {
		v.add("cctv.after", "%s is out of range (0 to 24h)", c.CCTV.After.D())
	}
}
