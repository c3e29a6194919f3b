// Package smoke holds the vmtest harness's own smoke test (build tags
// linux && vmtest): it proves that the VM, the gpio-sim chip and the cdev
// uAPI work end to end, independently of hallguard's own packages.
package smoke
