package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hallguard/hallguard/daemon/console"
)

// cmdPin reads a PIN from standard input (one line, never from the command
// line, where ps would show it) and prints its hash for the config's
// console.staff[].pin_hash or console.duress_pin_hash.
func cmdPin(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hallguard pin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	iter := fs.Int("iterations", console.DefaultIterations, "PBKDF2-SHA256 iterations (at least 10000)")
	setUsage(fs, "usage: hallguard pin [-iterations N] < PIN\n\nReads a PIN (at least 4 digits) from standard input and prints its hash for\nconsole.staff[].pin_hash or console.duress_pin_hash.", stderr)
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		if err == nil {
			fs.Usage()
		}
		return exitConfig
	}
	if f, ok := stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprint(stderr, "PIN: ")
		}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintln(stderr, "hallguard pin:", err)
		return exitFail
	}
	h, err := console.HashPIN(strings.TrimSpace(line), *iter)
	if err != nil {
		fmt.Fprintln(stderr, "hallguard pin:", err)
		return exitConfig
	}
	fmt.Fprintln(stdout, h)
	return exitOK
}
