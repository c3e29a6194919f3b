package config

// Playbook is one plan of §4, loaded from configs/playbooks/<id>.yaml.
type Playbook struct {
	// ID is the playbook's stable name: surge, system_failure, robbery, fire,
	// besieged, disturbance, illness, injury, lost_property, media.
	ID string `yaml:"id"`
	// Section cites the plan, e.g. "§4.4".
	Section string `yaml:"section"`
	Title   Text   `yaml:"title"`
	// Type is the §3.3 3 event type reported to the center.
	Type Text `yaml:"type"`
	// Mode is silent (robbery: nothing in the hall may change) or audible.
	Mode string `yaml:"mode"`
	// Triggers lists the input kinds that raise the playbook (panic, smoke,
	// callpoint, counter, probe); manual playbooks list none and set Manual.
	Triggers []string `yaml:"triggers"`
	// Manual playbooks may be raised by staff (trigger command, console, a
	// generic input mapped to it).
	Manual bool `yaml:"manual"`
	// ResolveBy says who may resolve: "center" (only an authenticated center
	// command) or "hall" (staff too).
	ResolveBy string `yaml:"resolve_by"`
	// Outputs are driven while the incident is active.
	Outputs []PlaybookOutput `yaml:"outputs"`
	// Escalation: if the incident is not acknowledged within After (counted
	// from activation), an escalation report names Role.
	Escalation []Escalation `yaml:"escalation"`
	Drill      Drill        `yaml:"drill"`
	// Steps apply to every variant; a variant's own steps follow them.
	Steps    []Step    `yaml:"steps"`
	Variants []Variant `yaml:"variants"`

	// File is where the playbook was loaded from.
	File string `yaml:"-"`
	// pos keeps the line of every field, for errors found after loading
	// (validatePlaybookRefs: an escalation role the config does not define).
	pos positions `yaml:"-"`
}

// Text is a string in the plan's original Chinese and in English.
type Text struct {
	ZH string `yaml:"zh" json:"zh"`
	EN string `yaml:"en" json:"en"`
}

// PlaybookOutput drives one configured output.
type PlaybookOutput struct {
	Output string `yaml:"output"`
	// Delay before the output acts, e.g. the power cut of §4.4 3.
	Delay   Duration `yaml:"delay"`
	Section string   `yaml:"section"`
}

// Escalation is one step of the escalation ladder (§2 roles).
type Escalation struct {
	After Duration `yaml:"after"`
	Role  string   `yaml:"role"`
}

// Drill holds the playbook's drill settings (§1.3).
type Drill struct {
	// Interval is how often the playbook must be drilled; 0: never required.
	Interval Duration `yaml:"interval"`
	// MaxDuration ends a drill automatically.
	MaxDuration Duration `yaml:"max_duration"`
	// Outputs lists outputs allowed to act during a drill (live_only
	// outputs never do).
	Outputs []string `yaml:"outputs"`
}

// Variant is a case of a playbook, such as §4.3(a) armed robbery.
type Variant struct {
	ID      string `yaml:"id"`
	Section string `yaml:"section"`
	Title   Text   `yaml:"title"`
	Steps   []Step `yaml:"steps"`
}

// Step is one numbered item of a plan.
type Step struct {
	ID      string `yaml:"id"`
	Section string `yaml:"section"` // e.g. "§4.3(b)2"
	Text    Text   `yaml:"text"`
	// Records lists what recording the step asks for, e.g. ["witness",
	// "witness"] for the two staff of §4.9(b)2, or ["message"] for §4.10.
	Records []string `yaml:"records"`
	// Action is an automatic action the daemon takes: "preserve_cctv".
	Action string `yaml:"action"`
}

// StepsFor returns the playbook's steps for a variant: the common steps,
// then the variant's.
func (p *Playbook) StepsFor(variant string) []Step {
	steps := append([]Step(nil), p.Steps...)
	for _, v := range p.Variants {
		if v.ID == variant {
			steps = append(steps, v.Steps...)
		}
	}
	return steps
}

// Variant returns the named variant, or nil.
func (p *Playbook) Variant(id string) *Variant {
	return byID(p.Variants, id, func(v *Variant) string { return v.ID })
}
