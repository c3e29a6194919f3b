package config

import "fmt"

// validateZones checks inputs[].zone: the names a walk test covers are
// input ids or zones, so a zone has an id's form and is no input's id.
func (c *Config) validateZones(v *validator) {
	for i, in := range c.Inputs {
		if in.Zone == "" {
			continue
		}
		f := fmt.Sprintf("inputs[%d].zone", i)
		switch {
		case !idRe.MatchString(in.Zone):
			v.add(f, "%q must be lower-case letters, digits, '-' or '_'", in.Zone)
		case c.Input(in.Zone) != nil:
			v.add(f, "%q is also an input id: a walk test could not tell them apart", in.Zone)
		}
	}
}
