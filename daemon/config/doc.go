// Package config holds hallguard's configuration: the YAML types, their
// defaults, and validation that names the file, line and field of every
// error. It also loads the playbooks (configs/playbooks/*.yaml), which carry
// the emergency plan's steps.
//
// It does no I/O beyond reading the files it is asked to load, and it
// imports nothing of hallguard's: every other package may import it.
package config
