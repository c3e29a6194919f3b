package console

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
)

// Issue #12 §1 (console and PINs) and issue #11 items 13 and 14, on the
// console's handlers with a fake engine and the fake clock.

// TestParallelGuessesJudgeAtMostMaxFailures sends 60 wrong PINs at the
// same moment: at most max_pin_failures (3 here) are judged, the rest are
// refused as locked before any hash.
func TestParallelGuessesJudgeAtMostMaxFailures(t *testing.T) {
	r := newRig(t, illnessAndRobbery())
	var wg sync.WaitGroup
	var mu sync.Mutex
	judged := 0
	start := make(chan struct{})
	for i := 0; i < 60; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, rep := r.post(map[string]any{"verb": "ack", "incident": "inc-illness", "staff": "Chen Jing", "pin": fmt.Sprintf("%04d", i)}, nil)
			if rep.Reason != "locked" {
				mu.Lock()
				judged++
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	if judged > 3 {
		t.Errorf("%d of 60 parallel guesses were judged, want at most max_pin_failures (3)", judged)
	}
	if _, rep := r.post(map[string]any{"verb": "ack", "incident": "inc-illness", "staff": "Chen Jing", "pin": "1234"}, nil); rep.Reason != "locked" {
		t.Errorf("the right PIN after the guesses: %+v, want locked", rep)
	}
}

// TestWrongPINAndRefusedActionAnswerAlike: the right PIN with an action
// that cannot be done answers as a wrong PIN does, in status, body and the
// counters, until both are right.
func TestWrongPINAndRefusedActionAnswerAlike(t *testing.T) {
	eng := illnessAndRobbery()
	eng.err = map[engine.Verb]error{engine.VerbResolve: fmt.Errorf("%w: not yet", engine.ErrNotAllowed)}
	r := newRig(t, eng)
	for _, tc := range []struct {
		name string
		req  map[string]any
	}{
		{"unknown incident", map[string]any{"verb": "ack", "incident": "no-such-incident"}},
		{"silent incident", map[string]any{"verb": "ack", "incident": "inc-robbery"}},
		{"silent playbook", map[string]any{"verb": "trigger", "playbook": "duress"}},
		{"engine refusal", map[string]any{"verb": "resolve", "incident": "inc-illness"}},
		{"bad drill action", map[string]any{"verb": "drill", "action": "pause"}},
	} {
		req := map[string]any{"staff": "Chen Jing"}
		for k, v := range tc.req {
			req[k] = v
		}
		req["pin"] = "0001"
		wrongCode, wrong := r.post(req, nil)
		wrongCounts := fmt.Sprint(r.counts)
		req["pin"] = "1234"
		rightCode, right := r.post(req, nil)
		if wrongCode != rightCode || wrong != right {
			t.Errorf("%s: wrong PIN %d %+v, right PIN %d %+v: want the same answer", tc.name, wrongCode, wrong, rightCode, right)
		}
		r.mu.Lock()
		for k, n := range r.counts {
			if !strings.HasSuffix(k, "/refused") && n > 0 {
				t.Errorf("%s: counted %s: the metrics tell a refused action from a wrong PIN (%s)", tc.name, k, wrongCounts)
			}
		}
		r.mu.Unlock()
		r.clk.Advance(10 * time.Minute) // past any lockout: each case on its own
	}
	if code, rep := r.post(map[string]any{"verb": "ack", "incident": "inc-illness", "staff": "Chen Jing", "pin": "1234"}, nil); code != http.StatusOK || !rep.OK {
		t.Errorf("right PIN, valid action: %d %+v", code, rep)
	}
}

// TestDuressPINWorksDuringLockout: with PIN entry locked (for the staff
// member, and for everyone), the duress PIN raises the silent duress
// playbook and does the action, with an ordinary success.
func TestDuressPINWorksDuringLockout(t *testing.T) {
	eng := illnessAndRobbery()
	r := newRig(t, eng)
	for i := 0; i < 9; i++ { // Liu Yang's own limit, then everyone's ceiling (3×3)
		staff := []string{"Liu Yang", "Chen Jing", "Nobody"}[i/3]
		r.post(map[string]any{"verb": "ack", "incident": "inc-illness", "staff": staff, "pin": "0000"}, nil)
	}
	if _, rep := r.post(map[string]any{"verb": "ack", "incident": "inc-illness", "staff": "Liu Yang", "pin": "5678"}, nil); rep.Reason != "locked" {
		t.Fatalf("Liu Yang's right PIN: %+v, want locked", rep)
	}
	code, rep := r.post(map[string]any{"verb": "step", "incident": "inc-illness", "step": "help_call_120", "staff": "Liu Yang", "pin": "9999"}, nil)
	if code != http.StatusOK || (rep != actionReply{OK: true, Incident: "inc-illness"}) {
		t.Errorf("duress PIN while locked: %d %+v, want 200 ok for inc-illness", code, rep)
	}
	var duress, step bool
	for _, c := range eng.commands() {
		duress = duress || (c.Verb == engine.VerbTrigger && c.Playbook == DuressPlaybook && c.By == "Liu Yang")
		step = step || (c.Verb == engine.VerbStep && c.Step == "help_call_120" && c.By == "Liu Yang")
	}
	if !duress || !step {
		t.Errorf("commands %+v: want the duress trigger (%v) and the step (%v)", eng.commands(), duress, step)
	}
}

// TestLockoutPerStaffWithCeilingAndBackoff: one member's lockout leaves
// the others free; everyone's failures together hit a ceiling; a lockout
// after a lockout lasts twice as long.
func TestLockoutPerStaffWithCeilingAndBackoff(t *testing.T) {
	cfg := demoConfig(t)
	for _, n := range []string{"Wang Lei", "Zhao Min", "Sun Li"} {
		cfg.Console.Staff = append(cfg.Console.Staff, config.Staff{Name: n, PINHash: chenHash})
	}
	r := newRig(t, illnessAndRobbery())
	if err := r.c.Switch(cfg, nil); err != nil {
		t.Fatal(err)
	}
	ack := func(staff, pin string) actionReply {
		_, rep := r.post(map[string]any{"verb": "ack", "incident": "inc-illness", "staff": staff, "pin": pin}, nil)
		return rep
	}
	for i := 0; i < 3; i++ {
		ack("Chen Jing", "0000")
	}
	if rep := ack("Chen Jing", "1234"); rep.Reason != "locked" {
		t.Errorf("Chen Jing after 3 wrong PINs: %+v, want locked", rep)
	}
	if rep := ack("Liu Yang", "5678"); !rep.OK {
		t.Errorf("Liu Yang while Chen Jing is locked: %+v, want ok", rep)
	}
	// Back-off: Chen Jing's second lockout lasts 2m, not 1m.
	r.clk.Advance(61 * time.Second)
	for i := 0; i < 3; i++ {
		ack("Chen Jing", "0000")
	}
	r.clk.Advance(61 * time.Second)
	if rep := ack("Chen Jing", "1234"); rep.Reason != "locked" {
		t.Errorf("Chen Jing 61s into the second lockout: %+v, want locked (2m)", rep)
	}
	r.clk.Advance(61 * time.Second)
	if rep := ack("Chen Jing", "1234"); !rep.OK {
		t.Errorf("Chen Jing after the second lockout: %+v, want ok", rep)
	}
	// The ceiling: 9 failures of anyone within the window lock everyone,
	// Sun Li too, who never failed.
	r.clk.Advance(10 * time.Minute)
	for _, n := range []string{"Chen Jing", "Liu Yang", "Wang Lei", "Zhao Min"} {
		for i := 0; i < 2; i++ {
			ack(n, "0000")
		}
	}
	ack("Nobody", "0000")
	if rep := ack("Sun Li", "1234"); rep.Reason != "locked" {
		t.Errorf("Sun Li after 9 failures of others: %+v, want locked (the ceiling)", rep)
	}
}

// TestStateShowsLabelsNotNames: the public state lists staff by opaque id
// and label, and shows a step done by a staff member under the label.
func TestStateShowsLabelsNotNames(t *testing.T) {
	eng := illnessAndRobbery()
	eng.incs[0].Steps[0].Done, eng.incs[0].Steps[0].By = true, "Chen Jing"
	cfg := demoConfig(t)
	cfg.Console.Staff[0].Label = "Teller 1"
	r := newRig(t, eng)
	if err := r.c.Switch(cfg, nil); err != nil {
		t.Fatal(err)
	}
	_, state := r.get("/console/api/state")
	_, page := r.get("/console/")
	for _, name := range []string{"Chen Jing", "Liu Yang"} {
		if strings.Contains(state+page, name) {
			t.Errorf("%q is readable without a PIN:\n%s", name, state)
		}
	}
	for _, want := range []string{`"label":"Teller 1"`, `"label":"2"`, `"by":"Teller 1"`, `"id":"` + r.c.staffID("Chen Jing") + `"`} {
		if !strings.Contains(state, want) {
			t.Errorf("state lacks %s:\n%s", want, state)
		}
	}
}

// TestSwitchAppliesStaffAndSilence (issue #11 item 14): after a switch a
// removed staff member is refused, a new one is accepted, and a playbook
// made silent leaves the page, together with the engine's switch.
func TestSwitchAppliesStaffAndSilence(t *testing.T) {
	eng := illnessAndRobbery()
	r := newRig(t, eng)
	next := demoConfig(t)
	next.Console.Staff = []config.Staff{{Name: "Wang Lei", PINHash: liuHash}}
	var pbs []*config.Playbook
	for _, pb := range next.Playbooks {
		if pb.ID == "illness" {
			cp := *pb
			cp.Mode = "silent"
			pb = &cp
		}
		pbs = append(pbs, pb)
	}
	next.Playbooks = pbs
	applied := false
	if err := r.c.Switch(next, func() { applied = true }); err != nil {
		t.Fatal(err)
	}
	if !applied {
		t.Error("Switch did not apply the engine's part")
	}
	if _, rep := r.post(map[string]any{"verb": "trigger", "playbook": "fire", "staff": "Chen Jing", "pin": "1234"}, nil); rep.OK {
		t.Error("a removed staff member still acts")
	}
	if _, rep := r.post(map[string]any{"verb": "trigger", "playbook": "fire", "staff": "Wang Lei", "pin": "5678"}, nil); !rep.OK {
		t.Errorf("the new staff member: %+v, want ok", rep)
	}
	if _, state := r.get("/console/api/state"); strings.Contains(state, "inc-illness") || strings.Contains(state, `"id":"illness"`) {
		t.Errorf("a playbook made silent still shows:\n%s", state)
	}
	// A config the console cannot use switches nothing.
	bad := demoConfig(t)
	bad.Console.DuressPINHash = "nonsense"
	applied = false
	if err := r.c.Switch(bad, func() { applied = true }); err == nil || applied {
		t.Errorf("Switch to a bad hash: %v, applied %v; want an error and nothing applied", err, applied)
	}
}

// TestEventStreamsCapped: past MaxStreams a new stream gets 503 with
// Retry-After; a closed stream frees its place.
func TestEventStreamsCapped(t *testing.T) {
	r := newRig(t, illnessAndRobbery())
	open := func() (*http.Response, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.srv.URL+"/console/events", nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode == http.StatusOK { // wait for the first event: the stream holds its place
			sc := bufio.NewScanner(res.Body)
			for sc.Scan() && !strings.HasPrefix(sc.Text(), "data: ") {
			}
		}
		return res, cancel
	}
	var cancels []context.CancelFunc
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	for i := 0; i < DefaultMaxStreams; i++ {
		res, cancel := open()
		cancels = append(cancels, cancel)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %s, want 200", i+1, res.Status)
		}
	}
	res, cancel := open()
	cancel()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Errorf("stream past the cap: %s, Retry-After %q; want 503 with Retry-After", res.Status, res.Header.Get("Retry-After"))
	}
	if got := r.counter("hallguard_console_streams_refused_total"); got != 1 {
		t.Errorf("hallguard_console_streams_refused_total = %v, want 1", got)
	}
	cancels[0]()
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, cancel := open()
		cancels = append(cancels, cancel)
		if res.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no place freed after a stream closed: %s", res.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLockedEntriesDoNotFloodTheJournal: entries refused as locked are all
// counted, but journalled at most once a minute per staff member.
func TestLockedEntriesDoNotFloodTheJournal(t *testing.T) {
	r := newRig(t, illnessAndRobbery())
	for i := 0; i < 50; i++ {
		r.post(map[string]any{"verb": "ack", "incident": "inc-illness", "staff": "Chen Jing", "pin": "0000"}, nil)
	}
	locked := 0
	r.mu.Lock()
	for _, rec := range r.records {
		if rec.kind == "command_rejected" && rec.data["reason"] == "locked" {
			locked++
		}
	}
	r.mu.Unlock()
	if locked != 1 {
		t.Errorf("%d journal records for 47 entries refused as locked, want 1", locked)
	}
	if got := r.counter("hallguard_console_pin_failures_total"); got != 50 {
		t.Errorf("hallguard_console_pin_failures_total = %v, want 50", got)
	}
}
