// Package daemon is the vmtest harness's whole-daemon test (build tags
// linux && vmtest, see ../README.md): the real hallguard binary runs inside
// the VM with the gpiocdev backend on the gpio-sim chip, the embedded MQTT
// broker and the shipped playbooks, and the test drives its inputs through
// sysfs, reads its outputs back from sysfs and talks to it as the monitoring
// center does, over MQTT with signed commands.
//
// testdata/hallguard-vm.yaml is the config template; template_test.go
// checks it on the host too (no VM needed).
package daemon
