//go:build security

package test

import (
	"fmt"
	"testing"
)

// attack prints the one line `make security` shows per attack: what was
// tried against the running binary, and what it got. Each attack test calls
// it once, after its assertions, so the line is the evidence of a pass.
func attack(t *testing.T, tried, got string) {
	t.Helper()
	fmt.Printf("ATTACK %-40s tried: %s | got: %s\n", t.Name(), tried, got)
}
