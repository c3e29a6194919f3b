package hallproc

import (
	"net"
	"slices"
)

// FreePorts returns n distinct free loopback addresses, none of them in
// avoid. Its listeners are all open until it has n: a port closed and
// asked for again can come back at once, and the soak on cbe1567 saw a
// daemon given one port for both -mqtt-listen and -http-listen
// ("bind: address already in use", TestOpenIncidentsSurviveAKill).
func FreePorts(n int, avoid ...string) ([]string, error) {
	var got []string
	var open []net.Listener
	defer func() {
		for _, l := range open {
			l.Close()
		}
	}()
	for len(got) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		open = append(open, l)
		if a := l.Addr().String(); !slices.Contains(avoid, a) {
			got = append(got, a)
		}
	}
	return got, nil
}
