package config

import (
	"cmp"
	"time"
)

// Incidents configures how long resolved incidents stay in the engine's
// memory, where the console and /api/incidents read them. The journal
// keeps every incident regardless (§3.5); an incident that left memory can
// still be reviewed (§3.4).
type Incidents struct {
	// Retention: a resolved incident leaves memory this long after it was
	// resolved, or as soon as it is reviewed. Default 30d, so that one is
	// normally reviewed (review.due_after) while held and its reviewed
	// report carries its whole course; 1h to 90d.
	Retention Duration `yaml:"retention"`
	// MaxResolved caps the resolved incidents held, the newest kept, so a
	// burst of incidents cannot grow memory or the time the engine's lock
	// is held. Default 100; 10 to 1000.
	MaxResolved int `yaml:"max_resolved"`
}

// Defaults of incidents.
const (
	DefaultIncidentRetention = 30 * 24 * time.Hour
	DefaultMaxResolved       = 100
)

func (c *Config) applyIncidentDefaults() {
	c.Incidents.Retention = cmp.Or(c.Incidents.Retention, Duration(DefaultIncidentRetention))
	c.Incidents.MaxResolved = cmp.Or(c.Incidents.MaxResolved, DefaultMaxResolved)
}

func (c *Config) validateIncidents(v *validator) {
	if d := c.Incidents.Retention.D(); d < time.Hour || d > 90*24*time.Hour {
		v.add("incidents.retention", "%s is out of range (1h to 90d)", d)
	}
	if n := c.Incidents.MaxResolved; n < 10 || n > 1000 {
		v.add("incidents.max_resolved", "%d is out of range (10 to 1000)", n)
	}
}
