package daemon

import "golang.org/x/sys/unix"

// clockSynchronized reports whether the kernel considers the clock
// synchronised (NTP/chrony cleared STA_UNSYNC): report times (§3.3 2) are
// only as true as this clock. It reads, never sets (Modes 0).
func clockSynchronized() (bool, bool) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false, false
	}
	return state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0, true
}
