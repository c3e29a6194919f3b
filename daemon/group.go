package daemon

import "sync"

// group is the daemon's one set of goroutines that Run joins before it
// returns: the background loops, the sim control socket, and the short
// hand-offs made off a caller's path (a timeline's delivery time, a CCTV
// note, a restore retried). Unlike a bare sync.WaitGroup, a goroutine may
// be started while another waits, and none starts after Stop.
type group struct {
	mu      sync.Mutex
	idle    sync.Cond // signalled when n falls to 0
	n       int
	stopped bool
}

// Go runs f in a goroutine of the group; after Stop it does nothing and
// reports false (what f would touch is being closed).
func (g *group) Go(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	g.n++
	go func() {
		defer g.done()
		f()
	}()
	return true
}

func (g *group) done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 {
		g.idle.Broadcast()
	}
}

// Wait waits until no goroutine of the group runs.
func (g *group) Wait() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.wait()
}

// Stop refuses new goroutines, then waits for those running.
func (g *group) Stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopped = true
	g.wait()
}

func (g *group) wait() {
	if g.idle.L == nil {
		g.idle.L = &g.mu
	}
	for g.n > 0 {
		g.idle.Wait()
	}
}

// nudge wakes the goroutine that waits on c (a channel with a buffer of
// one) without blocking: a wake-up already waiting stands for this one.
func nudge(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
