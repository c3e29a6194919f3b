package console

import (
	"sync"
	"time"
)

// gate decides which PIN entries are judged at all. Each staff member has
// an account (unknown names share one); all of them together have a
// ceiling. An entry takes a place in its account and in the ceiling
// *before* its hash is computed, so however many entries arrive at once, at
// most max of them are judged within a lockout window: the 61st parallel
// guess is refused as locked, not hashed (issue #12 §1).
//
// A lockout lasts window, doubled for each lockout that follows without a
// success in between (growing back-off), up to maxBackoff. The duress PIN is
// not the gate's business: it is recognised before the gate is asked
// (§4.3(a)2; issue #11 item 13).
type gate struct {
	mu       sync.Mutex
	max      int // judged failures per staff member within window
	ceiling  int // judged failures of everyone within window
	window   time.Duration
	accounts map[string]*account
	all      account
}

// maxBackoff caps the growing lockout.
const maxBackoff = 24 * time.Hour

// account is one staff member's (or everyone's) failures.
type account struct {
	failures []time.Time // judged failures within window, oldest first
	inflight int         // entries admitted and not yet judged
	until    time.Time   // locked until
	lockouts int         // lockouts since the last success: the back-off
	// noted is when an entry refused as locked was last journalled: a
	// flood of them must not grow the journal.
	noted time.Time
}

func newGate(max int, window time.Duration) *gate {
	return &gate{max: max, ceiling: 3 * max, window: window, accounts: map[string]*account{}}
}

// reconfigure takes new limits (a reload); accounts are kept.
func (g *gate) reconfigure(max int, window time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.max, g.ceiling, g.window = max, 3*max, window
}

func (g *gate) account(name string) *account {
	a := g.accounts[name]
	if a == nil {
		a = &account{}
		g.accounts[name] = a
	}
	return a
}

// full reports whether a has no room for one more judged entry.
func (a *account) full(now time.Time, window time.Duration, max int) bool {
	if now.Before(a.until) {
		return true
	}
	cut := now.Add(-window)
	i := 0
	for i < len(a.failures) && !a.failures[i].After(cut) {
		i++
	}
	a.failures = a.failures[i:]
	return len(a.failures)+a.inflight >= max
}

// admit reserves a judged entry for name, or reports that PIN entry is
// locked for it (its own account, or everyone's ceiling).
func (g *gate) admit(name string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.account(name)
	if a.full(now, g.window, g.max) || g.all.full(now, g.window, g.ceiling) {
		return false
	}
	a.inflight++
	g.all.inflight++
	return true
}

// done ends an admitted entry: ok when the PIN was right and the action
// done. It reports whether this failure locked PIN entry.
func (g *gate) done(name string, now time.Time, ok bool) (locked bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.account(name)
	a.inflight--
	g.all.inflight--
	if ok {
		a.failures, a.lockouts = nil, 0
		return false
	}
	for _, acc := range []struct {
		a   *account
		max int
	}{{a, g.max}, {&g.all, g.ceiling}} {
		acc.a.failures = append(acc.a.failures, now)
		if len(acc.a.failures) >= acc.max && !now.Before(acc.a.until) {
			d := g.window << min(acc.a.lockouts, 16)
			if d > maxBackoff || d <= 0 {
				d = maxBackoff
			}
			acc.a.failures, acc.a.until = nil, now.Add(d)
			acc.a.lockouts++
			locked = true
		}
	}
	return locked
}

// lockedFor reports how long PIN entry stays locked for name, 0 if not.
func (g *gate) lockedFor(name string, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	until := g.account(name).until
	if g.all.until.After(until) {
		until = g.all.until
	}
	if d := until.Sub(now); d > 0 {
		return d
	}
	return 0
}

// noteLocked reports whether an entry refused as locked for name is to be
// journalled: the first in a minute.
func (g *gate) noteLocked(name string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := g.account(name)
	if !a.noted.IsZero() && now.Sub(a.noted) < time.Minute {
		return false
	}
	a.noted = now
	return true
}
