package console

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/daemon/engine/enginetest"
	"github.com/hallguard/hallguard/devices/clock"
)

// fakeEngine holds incidents the test chooses and records commands.
type fakeEngine struct {
	mu    sync.Mutex
	incs  []engine.Incident
	cmds  []engine.Command
	queue engine.QueueState
	err   map[engine.Verb]error // by verb
}

func (f *fakeEngine) Do(c engine.Command) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, c)
	if err := f.err[c.Verb]; err != nil {
		return c.Incident, err
	}
	if c.Verb == engine.VerbTrigger {
		id := fmt.Sprintf("inc-%s-%d", c.Playbook, len(f.cmds))
		f.incs = append(f.incs, engine.Incident{ID: id, Playbook: c.Playbook, State: engine.StateActive, Origin: c.Origin, Source: c.By})
		return id, nil
	}
	return c.Incident, nil
}

func (f *fakeEngine) Incidents() []engine.Incident {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]engine.Incident(nil), f.incs...)
}

func (f *fakeEngine) Queue() engine.QueueState { return f.queue }

func (f *fakeEngine) commands() []engine.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]engine.Command(nil), f.cmds...)
}

type record struct {
	kind, incident, playbook string
	data                     map[string]any
}

type rig struct {
	t       *testing.T
	c       *Console
	eng     *fakeEngine
	srv     *httptest.Server
	reg     *prometheus.Registry
	clk     *clock.Fake
	mu      sync.Mutex
	records []record
	counts  map[string]int
}

var (
	hashOnce             sync.Once
	chenHash, duressHash string
	liuHash              string
)

func testHashes(t *testing.T) {
	hashOnce.Do(func() {
		var err error
		for _, h := range []struct {
			dst *string
			pin string
		}{{&chenHash, "1234"}, {&liuHash, "5678"}, {&duressHash, "9999"}} {
			if *h.dst, err = HashPIN(h.pin, 10000); err != nil {
				panic(err)
			}
		}
	})
}

func demoConfig(t *testing.T) *config.Config {
	t.Helper()
	testHashes(t)
	cfg, err := config.Load(filepath.Join("..", "..", "configs", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Console = config.Console{Staff: []config.Staff{{Name: "Chen Jing", PINHash: chenHash}, {Name: "Liu Yang", PINHash: liuHash}},
		DuressPINHash: duressHash, MaxPINFailures: 3, Lockout: config.Duration(time.Minute)}
	return cfg
}

func newRig(t *testing.T, eng Engine) *rig {
	t.Helper()
	r := &rig{t: t, reg: prometheus.NewRegistry(), clk: clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)), counts: map[string]int{}}
	if fe, ok := eng.(*fakeEngine); ok {
		r.eng = fe
	}
	c, err := New(Options{Engine: eng, Config: demoConfig(t), Connected: func() bool { return true }, Clock: r.clk,
		Record: func(kind, incident, playbook string, drill bool, data any) {
			b, _ := json.Marshal(data)
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			r.mu.Lock()
			r.records = append(r.records, record{kind, incident, playbook, m})
			r.mu.Unlock()
		},
		Counted: func(verb, result string) {
			r.mu.Lock()
			r.counts[verb+"/"+result]++
			r.mu.Unlock()
		},
		Registerer: r.reg, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r.c = c
	r.srv = httptest.NewServer(c.Handler())
	t.Cleanup(r.srv.Close)
	return r
}

// post sends an action as the page does (token header, JSON), with mod
// changing the request first.
func (r *rig) post(body any, mod func(*http.Request)) (int, actionReply) {
	r.t.Helper()
	if m, ok := body.(map[string]any); ok { // staff are named here; the page sends their opaque id
		if name, ok := m["staff"].(string); ok {
			m2 := map[string]any{}
			for k, v := range m {
				m2[k] = v
			}
			m2["staff"] = r.c.staffID(name)
			body = m2
		}
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, r.srv.URL+"/console/api/action", strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Console-Token", r.c.token)
	req.Header.Set("Origin", r.srv.URL)
	if mod != nil {
		mod(req)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	var rep actionReply
	_ = json.NewDecoder(res.Body).Decode(&rep)
	return res.StatusCode, rep
}

// counter reads one of the console's counters from its registry.
func (r *rig) counter(name string) float64 {
	r.t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	r.t.Fatalf("no metric %s", name)
	return 0
}

func (r *rig) get(path string) (int, string) {
	r.t.Helper()
	res, err := http.Get(r.srv.URL + path)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func illnessAndRobbery() *fakeEngine {
	return &fakeEngine{incs: []engine.Incident{
		{ID: "inc-illness", Playbook: "illness", State: engine.StateActive,
			Steps: []engine.StepState{{ID: "help_call_120", Section: "§4.7 1", Text: config.Text{ZH: "帮助", EN: "help"}}}},
		{ID: "inc-robbery", Playbook: "robbery", Variant: "armed", State: engine.StateActive,
			Steps: []engine.StepState{{ID: "call_110_report_manager", Section: "§4.3(a)2"}}},
	}, queue: engine.QueueState{Length: 7, Rate: 2.345}}
}

func TestPINHash(t *testing.T) {
	h, err := HashPIN("2468", 10000)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "pbkdf2-sha256$10000$") {
		t.Errorf("hash %q: want pbkdf2-sha256$10000$...", h)
	}
	for _, tc := range []struct {
		pin  string
		want bool
	}{{"2468", true}, {"2469", false}, {"", false}, {"24680", false}} {
		if ok, err := VerifyPIN(h, tc.pin); err != nil || ok != tc.want {
			t.Errorf("VerifyPIN(%q) = %v, %v; want %v", tc.pin, ok, err, tc.want)
		}
	}
	if h2, _ := HashPIN("2468", 10000); h2 == h {
		t.Error("two hashes of one PIN are equal: the salt is not random")
	}
	for _, bad := range []string{"2468", "pbkdf2-sha1$10000$c2FsdHNhbHQ=$aGFzaA==", "pbkdf2-sha256$x$c2FsdHNhbHQ=$aGFzaA==", "pbkdf2-sha256$10000$!!$aGFzaA=="} {
		if _, err := VerifyPIN(bad, "2468"); err == nil {
			t.Errorf("VerifyPIN(%q) accepted a malformed hash", bad)
		}
	}
	for _, pin := range []string{"12", "12a4", ""} {
		if _, err := HashPIN(pin, 10000); err == nil {
			t.Errorf("HashPIN(%q) accepted a PIN that is not 4+ digits", pin)
		}
	}
	if _, err := HashPIN("1234", 100); err == nil {
		t.Error("HashPIN with 100 iterations: want an error")
	}
}

func TestCSRFRequired(t *testing.T) {
	r := newRig(t, illnessAndRobbery())
	ack := map[string]any{"verb": "ack", "incident": "inc-illness", "staff": "Chen Jing", "pin": "1234"}
	for _, tc := range []struct {
		name string
		mod  func(*http.Request)
	}{
		{"no token", func(q *http.Request) { q.Header.Del("X-Console-Token") }},
		{"wrong token", func(q *http.Request) { q.Header.Set("X-Console-Token", strings.Repeat("0", 64)) }},
		{"other origin", func(q *http.Request) { q.Header.Set("Origin", "http://evil.example") }},
		{"cross-site fetch", func(q *http.Request) { q.Header.Set("Sec-Fetch-Site", "cross-site") }},
		{"form post", func(q *http.Request) { q.Header.Set("Content-Type", "application/x-www-form-urlencoded") }},
	} {
		code, rep := r.post(ack, tc.mod)
		if code != http.StatusForbidden || rep.Reason != "csrf" {
			t.Errorf("%s: %d %+v, want 403 csrf", tc.name, code, rep)
		}
	}
	if n := len(r.eng.commands()); n != 0 {
		t.Errorf("%d commands reached the engine without the token", n)
	}
	// A GET cannot act, and a rebinding host name is refused.
	if code, _ := r.get("/console/api/action"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /console/api/action: %d, want 405", code)
	}
	req, _ := http.NewRequest(http.MethodGet, r.srv.URL+"/console/", nil)
	req.Host = "attacker.example:9464"
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("Host attacker.example: %v %v, want 421", res.StatusCode, err)
	}
	// With the token the same request works.
	if code, rep := r.post(ack, nil); code != http.StatusOK || !rep.OK {
		t.Errorf("with the token: %d %+v, want 200 ok", code, rep)
	}
	// The page carries the token; no PIN hash ever reaches the page.
	_, page := r.get("/console/")
	if !strings.Contains(page, r.c.token) {
		t.Error("the page does not carry the CSRF token")
	}
	_, state := r.get("/console/api/state")
	if strings.Contains(page+state, "pbkdf2") {
		t.Error("a PIN hash reached the page")
	}
}

func TestWrongPINRefusedCountedAndLockout(t *testing.T) {
	r := newRig(t, illnessAndRobbery())
	step := map[string]any{"verb": "step", "incident": "inc-illness", "step": "help_call_120", "staff": "Chen Jing", "pin": "0000"}
	code, rep := r.post(step, nil)
	if code != http.StatusForbidden || rep.Reason != "refused" {
		t.Fatalf("wrong PIN: %d %+v, want 403 refused", code, rep)
	}
	if got := r.counter("hallguard_console_pin_failures_total"); got != 1 {
		t.Errorf("hallguard_console_pin_failures_total = %v, want 1", got)
	}
	// Another's PIN is wrong too.
	step["pin"] = "5678"
	if code, _ := r.post(step, nil); code != http.StatusForbidden {
		t.Errorf("Liu Yang's PIN for Chen Jing: %d, want 403", code)
	}
	if n := len(r.eng.commands()); n != 0 {
		t.Errorf("%d commands reached the engine with wrong PINs", n)
	}
	// The third failure (max_pin_failures 3) locks Chen Jing's PIN entry,
	// even for the right PIN, until the lockout (1m) has passed.
	step["pin"] = "1111"
	r.post(step, nil)
	if got := r.counter("hallguard_console_lockouts_total"); got != 1 {
		t.Errorf("hallguard_console_lockouts_total = %v, want 1", got)
	}
	step["pin"] = "1234"
	if code, rep := r.post(step, nil); code != http.StatusTooManyRequests || rep.Reason != "locked" {
		t.Errorf("right PIN while locked: %d %+v, want 429 locked", code, rep)
	}
	r.clk.Advance(61 * time.Second)
	if code, rep := r.post(step, nil); code != http.StatusOK {
		t.Errorf("right PIN after the lockout: %d %+v, want 200", code, rep)
	}
	cmds := r.eng.commands()
	if len(cmds) != 1 || cmds[0].By != "Chen Jing" || cmds[0].Origin != engine.OriginStaff || cmds[0].Step != "help_call_120" {
		t.Errorf("commands %+v, want one step by Chen Jing, origin staff", cmds)
	}
	var rejected, done int
	for _, rec := range r.records {
		switch rec.kind {
		case "command_rejected":
			rejected++
			if strings.Contains(fmt.Sprint(rec.data), "0000") {
				t.Errorf("a journal record holds the PIN: %v", rec.data)
			}
		case "command":
			done++
			if rec.data["by"] != "Chen Jing" || rec.data["verb"] != "step" {
				t.Errorf("command record %v", rec.data)
			}
			if strings.Contains(fmt.Sprint(rec.data), "1234") {
				t.Errorf("a journal record holds the PIN: %v", rec.data)
			}
		}
	}
	if rejected != 4 || done != 1 {
		t.Errorf("journal: %d rejected, %d commands; want 4 and 1", rejected, done)
	}
	if r.counts["step/ok"] != 1 {
		t.Errorf("commands counted %v, want step/ok 1", r.counts)
	}
}

func TestSilentIncidentsNeverReachThePage(t *testing.T) {
	eng := illnessAndRobbery()
	r := newRig(t, eng)
	_, state := r.get("/console/api/state")
	var st State
	if err := json.Unmarshal([]byte(state), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Incidents) != 1 || st.Incidents[0].Playbook != "illness" {
		t.Errorf("incidents %+v, want illness only", st.Incidents)
	}
	for _, word := range []string{"robbery", "inc-robbery", "抢劫", "duress", "胁迫", "§4.3"} {
		if strings.Contains(state, word) {
			t.Errorf("state holds %q:\n%s", word, state)
		}
	}
	// The same state with and without the robbery, byte for byte.
	eng.mu.Lock()
	robbery := eng.incs[1]
	eng.incs = eng.incs[:1]
	eng.mu.Unlock()
	if _, without := r.get("/console/api/state"); without != state {
		t.Errorf("state differs with a robbery open:\nwith:    %s\nwithout: %s", state, without)
	}
	// Acting on the robbery through the console is refused as unknown.
	eng.mu.Lock()
	eng.incs = append(eng.incs, robbery)
	eng.mu.Unlock()
	if code, rep := r.post(map[string]any{"verb": "ack", "incident": "inc-robbery", "staff": "Chen Jing", "pin": "1234"}, nil); code == http.StatusOK || strings.Contains(rep.Error, "robbery") {
		t.Errorf("ack of the robbery: %d %+v, want refused without naming it", code, rep)
	}
	if code, _ := r.post(map[string]any{"verb": "trigger", "playbook": "duress", "staff": "Chen Jing", "pin": "1234"}, nil); code == http.StatusOK {
		t.Error("the console raised the duress playbook openly")
	}
	for _, c := range eng.commands() {
		t.Errorf("a command on a silent playbook reached the engine: %+v", c)
	}
	// An engine refusal that names the robbery is not passed on.
	eng.err = map[engine.Verb]error{engine.VerbDrill: fmt.Errorf("%w: real incident inc-robbery (robbery) is open", engine.ErrNotAllowed)}
	if _, rep := r.post(map[string]any{"verb": "drill", "action": "start", "playbook": "fire", "staff": "Chen Jing", "pin": "1234"}, nil); strings.Contains(rep.Error, "robbery") {
		t.Errorf("drill refusal passed on: %+v", rep)
	}

	// The event stream: one snapshot, and nothing when a robbery comes and
	// goes; a snapshot when a visible incident changes.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.srv.URL+"/console/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("events Content-Type %q", ct)
	}
	events := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events <- d
			}
		}
		close(events)
	}()
	first := <-events
	if first != state {
		t.Errorf("first event is not the state:\n%s\n%s", first, state)
	}
	eng.mu.Lock()
	eng.incs = append(eng.incs, engine.Incident{ID: "inc-duress", Playbook: "duress", State: engine.StateActive})
	eng.incs[1].State = engine.StateAcknowledged // the robbery moves on
	eng.mu.Unlock()
	select {
	case ev := <-events:
		t.Errorf("an event was sent for silent incidents: %s", ev)
	case <-time.After(200 * time.Millisecond): // ten polls
	}
	eng.mu.Lock()
	eng.incs[0].State = engine.StateAcknowledged
	eng.mu.Unlock()
	select {
	case ev := <-events:
		if !strings.Contains(ev, `"state":"acknowledged"`) || strings.Contains(ev, "robbery") || strings.Contains(ev, "duress") {
			t.Errorf("event %s", ev)
		}
	case <-time.After(2 * time.Second):
		t.Error("no event after the illness was acknowledged")
	}
}

func TestDuressPINDoesTheActionAndRaisesDuress(t *testing.T) {
	eng := illnessAndRobbery()
	eng.incs = eng.incs[:1]
	r := newRig(t, eng)
	_, before := r.get("/console/api/state")
	step := map[string]any{"verb": "step", "incident": "inc-illness", "step": "help_call_120", "staff": "Liu Yang", "pin": "9999"}
	code, duressRep := r.post(step, nil)
	if code != http.StatusOK || !duressRep.OK || duressRep.Incident != "inc-illness" {
		t.Fatalf("duress PIN: %d %+v, want 200 ok for inc-illness", code, duressRep)
	}
	cmds := eng.commands()
	if len(cmds) != 2 {
		t.Fatalf("commands %+v, want the duress trigger and the step", cmds)
	}
	d, s := cmds[0], cmds[1]
	if d.Verb != engine.VerbTrigger || d.Playbook != DuressPlaybook || d.By != "Liu Yang" || d.Origin != engine.OriginStaff {
		t.Errorf("duress command %+v", d)
	}
	if s.Verb != engine.VerbStep || s.Step != "help_call_120" || s.By != "Liu Yang" {
		t.Errorf("step command %+v", s)
	}
	// The page sees the reply to an ordinary PIN and the same state.
	if _, after := r.get("/console/api/state"); after != before {
		t.Errorf("state changed with duress:\n%s\n%s", before, after)
	}
	_, rep := r.post(map[string]any{"verb": "report", "incident": "inc-illness", "trend": "stable", "staff": "Liu Yang", "pin": "5678"}, nil)
	if (rep != actionReply{OK: true, Incident: "inc-illness"}) || (duressRep != actionReply{OK: true, Incident: "inc-illness"}) {
		t.Errorf("replies differ: duress %+v, ordinary %+v", duressRep, rep)
	}
	// A second duress PIN while duress is open adds to its report.
	eng.err = map[engine.Verb]error{engine.VerbTrigger: fmt.Errorf("%w: duress is already open", engine.ErrNotAllowed)}
	eng.mu.Lock()
	eng.incs[len(eng.incs)-1].ID = "inc-duress"
	eng.mu.Unlock()
	r.post(map[string]any{"verb": "ack", "incident": "inc-illness", "staff": "Chen Jing", "pin": "9999"}, nil)
	if r.counter("hallguard_console_pin_failures_total") != 0 {
		t.Error("the duress PIN was counted as a wrong PIN")
	}
	var duressRecs int
	for _, rec := range r.records {
		if rec.data["duress"] == true {
			duressRecs++
		}
	}
	if duressRecs != 2 {
		t.Errorf("%d duress journal records, want 2", duressRecs)
	}
}

// TestRealEngine runs the console on the real engine: trigger §4.7, mark
// a step, acknowledge and resolve; a panic press leaves the state as it was.
func TestRealEngine(t *testing.T) {
	cfg := demoConfig(t)
	clk := clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	sink := &enginetest.Sink{}
	eng := engine.New(cfg, sink.Sinks(), engine.WithClock(clk))
	eng.Start()
	defer eng.Close()
	r := newRig(t, eng)
	code, rep := r.post(map[string]any{"verb": "trigger", "playbook": "illness", "staff": "Chen Jing", "pin": "1234"}, nil)
	if code != http.StatusOK {
		t.Fatalf("trigger: %d %+v", code, rep)
	}
	inc := rep.Incident
	if code, rep := r.post(map[string]any{"verb": "step", "incident": inc, "step": "help_call_120", "staff": "Chen Jing", "pin": "1234"}, nil); code != http.StatusOK {
		t.Fatalf("step: %d %+v", code, rep)
	}
	got, _ := eng.Incident(inc)
	if !got.Steps[0].Done || got.Steps[0].By != "Chen Jing" {
		t.Errorf("step %+v, want done by Chen Jing", got.Steps[0])
	}
	// An action the engine refuses answers as a wrong PIN does.
	if code, rep := r.post(map[string]any{"verb": "step", "incident": inc, "step": "help_call_120", "staff": "Chen Jing", "pin": "1234"}, nil); code != http.StatusForbidden || rep != refusedReply {
		t.Errorf("step twice: %d %+v, want 403 %+v", code, rep, refusedReply)
	}
	if code, rep := r.post(map[string]any{"verb": "drill", "action": "start", "playbook": "fire", "staff": "Chen Jing", "pin": "1234"}, nil); code != http.StatusForbidden {
		t.Errorf("drill while illness is open: %d %+v, want 403", code, rep)
	}
	_, before := r.get("/console/api/state")
	// Duress: the step is done and a silent duress incident is raised.
	if code, rep := r.post(map[string]any{"verb": "report", "incident": inc, "impact": "one customer", "staff": "Liu Yang", "pin": "9999"}, nil); code != http.StatusOK {
		t.Fatalf("report with duress PIN: %d %+v", code, rep)
	}
	duress := sink.ReportsOf(DuressPlaybook)
	if len(duress) == 0 || !duress[0].Silent || duress[0].Source != "Liu Yang" {
		t.Fatalf("duress reports %+v, want a silent one by Liu Yang", duress)
	}
	_, after := r.get("/console/api/state")
	if strings.Contains(after, "duress") || strings.Count(after, `"playbook":"illness"`) != 1 {
		t.Errorf("state after duress: %s", after)
	}
	if before == after {
		t.Error("the report update did not show")
	}
	for _, verb := range []string{"ack", "resolve"} {
		if code, rep := r.post(map[string]any{"verb": verb, "incident": inc, "staff": "Chen Jing", "pin": "1234"}, nil); code != http.StatusOK {
			t.Errorf("%s: %d %+v", verb, code, rep)
		}
	}
	if _, s := r.get("/console/api/state"); !strings.Contains(s, `"incidents":[]`) {
		t.Errorf("after resolve: %s", s)
	}
	if r.counts["trigger/ok"] != 2 || r.counts["step/ok"] != 1 || r.counts["step/refused"] != 1 {
		t.Errorf("counts %v", r.counts)
	}
}

func TestAssetsServed(t *testing.T) {
	r := newRig(t, &fakeEngine{})
	for _, p := range []string{"/console/", "/console/assets/app.js", "/console/assets/style.css"} {
		res, err := http.Get(r.srv.URL + p)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %v %v", p, res.StatusCode, err)
			continue
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("GET %s: CSP %q", p, csp)
		}
		res.Body.Close()
	}
	for _, p := range []string{"/console/assets/index.html", "/console/assets/nope.js"} {
		if code, _ := r.get(p); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, code)
		}
	}
}

// A name in http.hosts is the box's on every route (README, HTTP), the
// console's too: a kiosk that opens the console by that name (the name of
// the local listener's TLS certificate, say) is served, not refused 421.
func TestConsoleServesAHostNamedInHTTPHosts(t *testing.T) {
	cfg := demoConfig(t)
	cfg.HTTP.Hosts = []string{"hall-07.example"}
	c, err := New(Options{Engine: illnessAndRobbery(), Config: cfg, Clock: clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]int{"hall-07.example:9465": http.StatusOK, "HALL-07.example": http.StatusOK, "attacker.example:9465": http.StatusMisdirectedRequest} {
		req := httptest.NewRequest(http.MethodGet, "/console/", nil)
		req.Host = host
		w := httptest.NewRecorder()
		c.Handler().ServeHTTP(w, req)
		if w.Code != want {
			t.Errorf("Host %s: %d, want %d", host, w.Code, want)
		}
	}
}
