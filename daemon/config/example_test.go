package config_test

import (
	"errors"
	"fmt"

	"github.com/hallguard/hallguard/daemon/config"
)

// A FieldError names the file, the line, the field and the problem, in the
// form editors and CI logs turn into links.
func ExampleFieldError() {
	err := config.FieldError{
		File:  "/etc/hallguard/hallguard.yaml",
		Line:  42,
		Field: "inputs[3].variant",
		Msg:   `unknown variant "knife" (want armed, explosive or gas)`,
	}
	fmt.Println(err)
	// Output: /etc/hallguard/hallguard.yaml:42: inputs[3].variant: unknown variant "knife" (want armed, explosive or gas)
}

// Parse reports every problem at once, one FieldError per line.
func ExampleParse() {
	_, err := config.Parse("hallguard.yaml", []byte(`
hall: {id: hall-1, name: Test hall, location: 1 Test Road}
backend: sim
inputs:
  - id: panic-1
    kind: panic
    line: 17
outputs:
  - id: siren
    line: 17
    fail_safe: inactive
commands: {key_file: command.key}
playbooks_dir: testdata/playbooks-min
roles: [{id: supervisor}, {id: center_manager}, {id: general_manager}]
`))
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Println(e)
		}
	}
	// Output:
	// hallguard.yaml:5: inputs[0].variant: a panic input needs a variant: armed (§4.3(a)), explosive (§4.3(b)) or gas (§4.3(c))
	// hallguard.yaml:10: outputs[0].line: gpiochip0 line 17 is already used by inputs[0]
}
