//go:build security

package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hallguard/hallguard/test/hallproc"
)

// Attacks on the console, the PINs and the HTTP surface (issue #12 §1, §2;
// issue #11 item 13), each against the real binary on configs/demo.yaml.
// The demo's staff: "Chen Jing" PIN 1234, "Liu Yang" 5678, duress 9999,
// max_pin_failures 5.

// reloadFlag turns POST /-/reload on (off by default, as Prometheus's
// --web.enable-lifecycle).
var reloadFlag = []string{"-enable-reload"}

var tokenRe = regexp.MustCompile(`<meta name="console-token" content="([0-9a-f]+)">`)

// consoleClient is a same-origin client of the console on the local
// listener, as the kiosk page is: it holds the page's CSRF token and the
// staff list the page gets.
type consoleClient struct {
	t     *testing.T
	base  string
	token string
	// staff maps the picker's labels (demo: "Teller 1" is Chen Jing,
	// "Teller 2" Liu Yang) to what the page sends as staff.
	staff map[string]string
}

func newConsoleClient(t *testing.T, d *daemonProc) *consoleClient {
	t.Helper()
	c := &consoleClient{t: t, base: "http://" + d.local}
	resp, err := http.Get(c.base + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := tokenRe.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no console token in the page (%s):\n%s", resp.Status, b)
	}
	c.token = string(m[1])
	c.staff = map[string]string{}
	resp, err = http.Get(c.base + "/console/api/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Staff []json.RawMessage `json:"staff"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	for i, raw := range st.Staff {
		var s struct{ ID, Label string }
		if json.Unmarshal(raw, &s) != nil { // d3b536a: a list of names
			var name string
			_ = json.Unmarshal(raw, &name)
			s.ID, s.Label = name, fmt.Sprintf("Teller %d", i+1)
		}
		c.staff[s.Label] = s.ID
	}
	return c
}

// answer is a console answer as an attacker sees it: status and body.
type answer struct {
	Status int
	Body   string
}

func (r answer) reason() string {
	var v struct {
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal([]byte(r.Body), &v)
	return v.Reason
}

// act posts an action; body's staff is a label, sent as the page does.
func (c *consoleClient) act(body map[string]any) answer {
	send := map[string]any{}
	for k, v := range body {
		send[k] = v
	}
	if label, ok := body["staff"].(string); ok {
		send["staff"] = c.staff[label]
	}
	b, _ := json.Marshal(send)
	req, _ := http.NewRequest(http.MethodPost, c.base+"/console/api/action", strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Console-Token", c.token)
	req.Header.Set("Origin", c.base)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Error(err)
		return answer{}
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, strings.TrimSpace(string(rb))}
}

// TestSecurityParallelPINGuesses sends 60 PIN guesses for one staff member
// at the same moment: at most max_pin_failures (5) may be judged.
func TestSecurityParallelPINGuesses(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml")
	c := newConsoleClient(t, d)
	var wg sync.WaitGroup
	replies := make([]answer, 60)
	start := make(chan struct{})
	for i := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// 0000..0059: none is a staff PIN or the duress PIN.
			replies[i] = c.act(map[string]any{"verb": "trigger", "playbook": "illness", "staff": "Teller 1", "pin": fmt.Sprintf("%04d", i)})
		}()
	}
	close(start)
	wg.Wait()
	judged, locked := 0, 0
	for _, r := range replies {
		switch r.reason() {
		case "locked":
			locked++
		default:
			if r.Status == http.StatusOK {
				t.Fatalf("a wrong PIN was accepted: %+v", r)
			}
			judged++
		}
	}
	if judged > 5 {
		t.Errorf("%d of 60 parallel guesses were judged; at most max_pin_failures (5) may be", judged)
	}
	// The right PIN is refused too while the lockout lasts.
	if r := c.act(map[string]any{"verb": "trigger", "playbook": "illness", "staff": "Teller 1", "pin": "1234"}); r.reason() != "locked" {
		t.Errorf("the right PIN after the guesses: %+v, want locked", r)
	}
	attack(t, "60 parallel wrong PINs for one staff member", fmt.Sprintf("%d judged, %d refused as locked", judged, locked))
}

// TestSecurityPINOracleViaInvalidAction checks that the right PIN with an
// action that cannot be done answers exactly as a wrong PIN does.
func TestSecurityPINOracleViaInvalidAction(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml")
	c := newConsoleClient(t, d)
	bogus := map[string]any{"verb": "ack", "incident": "no-such-incident", "staff": "Teller 1"}
	bogus["pin"] = "0001"
	wrong := c.act(bogus)
	bogus["pin"] = "1234"
	right := c.act(bogus)
	if wrong != right {
		t.Errorf("a wrong PIN and the right PIN with an impossible action answer differently:\n wrong PIN: %+v\n right PIN: %+v", wrong, right)
	}
	// Right PIN and a valid action still work.
	if ok := c.act(map[string]any{"verb": "trigger", "playbook": "illness", "staff": "Teller 1", "pin": "1234"}); ok.Status != http.StatusOK {
		t.Errorf("right PIN, valid action: %+v, want 200", ok)
	}
	attack(t, "right PIN with an unknown incident vs a wrong PIN", fmt.Sprintf("both %d %s", right.Status, right.Body))
}

// TestSecurityDuressDuringLockout locks PIN entry with wrong PINs, then
// enters the duress PIN: the action is done (or appears to be) and the
// silent duress report reaches the center.
func TestSecurityDuressDuringLockout(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml")
	center := subscribe(t, d.mqtt, "hallguard/demo-hall/alerts/#")
	c := newConsoleClient(t, d)
	for i := 0; i < 6; i++ {
		c.act(map[string]any{"verb": "trigger", "playbook": "illness", "staff": "Teller 2", "pin": fmt.Sprintf("%04d", 100+i)})
	}
	if r := c.act(map[string]any{"verb": "trigger", "playbook": "illness", "staff": "Teller 2", "pin": "5678"}); r.reason() != "locked" {
		t.Fatalf("after six wrong PINs the right one got %+v, want locked", r)
	}
	r := c.act(map[string]any{"verb": "trigger", "playbook": "illness", "staff": "Teller 2", "pin": "9999"})
	if r.Status != http.StatusOK || !strings.Contains(r.Body, `"ok":true`) {
		t.Errorf("duress PIN during the lockout: %+v, want the action's success", r)
	}
	m := center.wait(t, 10*time.Second, func(m message) bool {
		return m.Topic == "hallguard/demo-hall/alerts/duress" && strings.Contains(string(m.Payload), `"event":"raised"`)
	})
	if strings.Contains(r.Body, "duress") {
		t.Errorf("the answer names duress: %s", r.Body)
	}
	attack(t, "duress PIN while PIN entry is locked", fmt.Sprintf("%d to the hall; silent duress report on %s", r.Status, m.Topic))
}

// TestSecurityStaffNamesNotPublic reads the console's public state, page
// and event stream: no staff name may be in them.
func TestSecurityStaffNamesNotPublic(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml")
	base := "http://" + d.local
	var all strings.Builder
	for _, p := range []string{"/console/", "/console/api/state"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		all.Write(b)
	}
	resp, err := http.Get(base + "/console/events")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			all.WriteString(sc.Text())
			break
		}
	}
	resp.Body.Close()
	found := []string{}
	for _, name := range []string{"Chen Jing", "Liu Yang"} {
		if strings.Contains(all.String(), name) {
			found = append(found, name)
		}
	}
	if len(found) > 0 {
		t.Errorf("staff names readable without a PIN: %v", found)
	}
	attack(t, "GET /console/, /console/api/state, /console/events", fmt.Sprintf("staff names found: %d", len(found)))
}

// TestSecurityHostEvilOnAPIIncidents asks for the incidents, a silent
// robbery among them, with a foreign Host (DNS rebinding).
func TestSecurityHostEvilOnAPIIncidents(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml")
	d.sim("press", "panic-teller-1")
	waitFor(t, 10*time.Second, func() bool {
		v, _ := hallproc.Sample(d.metrics(), `hallguard_incidents_total{drill="false",origin="button",playbook="robbery"}`)
		return v == "1"
	}, "the robbery", d.logs)
	got := []string{}
	for _, addr := range []string{d.local, d.http} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/incidents", nil)
		req.Host = "evil.example"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(b), "robbery") {
			t.Errorf("Host evil.example on %s/api/incidents: %s with %q", addr, resp.Status, b)
		}
		got = append(got, resp.Status)
	}
	// Nor does the operations listener serve the API at all.
	if d.http != d.local {
		resp, err := http.Get("http://" + d.http + "/api/incidents")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("/api/incidents on http.listen: %s, want 404", resp.Status)
		}
	}
	attack(t, "Host: evil.example GET /api/incidents (robbery open)", strings.Join(got, ", "))
}

// reloads reads hallguard_config_reloads_total{result="ok"}.
func reloads(d *daemonProc) string {
	v, _ := hallproc.Sample(d.metrics(), `hallguard_config_reloads_total{result="ok"}`)
	return v
}

// TestSecurityCrossOriginReload posts a text/plain reload from another
// origin, as a page the kiosk browser opened could, with reload enabled.
func TestSecurityCrossOriginReload(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml", reloadFlag...)
	req, _ := http.NewRequest(http.MethodPost, "http://"+d.local+"/-/reload", strings.NewReader("x"))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Origin", "http://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cross, crossReloads := resp.Status, reloads(d)
	if resp.StatusCode == http.StatusOK || crossReloads != "0" {
		t.Errorf("cross-origin reload: %s %q, reloads ok = %s; want refused and none", resp.Status, b, crossReloads)
	}
	// The same reload from the box itself (no Origin) works.
	resp, err = http.Post("http://"+d.local+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || reloads(d) != "1" {
		t.Errorf("local reload with -enable-reload: %s, reloads ok = %s; want 200 and 1", resp.Status, reloads(d))
	}
	attack(t, "cross-origin text/plain POST /-/reload (reload enabled)", fmt.Sprintf("%s; reloads done by it: %s", cross, crossReloads))
}

// TestSecurityReloadOffByDefault posts a reload to a daemon started without
// the flag.
func TestSecurityReloadOffByDefault(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml")
	got := []string{}
	for _, addr := range []string{d.local, d.http} {
		resp, err := http.Post("http://"+addr+"/-/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("POST %s/-/reload without -enable-reload: %s", addr, resp.Status)
		}
		got = append(got, resp.Status)
	}
	if v := reloads(d); v != "0" {
		t.Errorf("reloads ok = %s, want 0", v)
	}
	attack(t, "POST /-/reload, reload not enabled", strings.Join(got, ", "))
}

// TestSecuritySSEClientCap opens many event streams at once: past the cap
// they are refused with 503 and Retry-After, and the daemon stays healthy.
func TestSecuritySSEClientCap(t *testing.T) {
	d := startDaemon(t, "configs/demo.yaml")
	const n = 64
	ok, refused := 0, 0
	var bodies []io.Closer
	defer func() {
		for _, b := range bodies {
			b.Close()
		}
	}()
	client := &http.Client{}
	for i := 0; i < n; i++ {
		resp, err := client.Get("http://" + d.local + "/console/events")
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, resp.Body)
		switch resp.StatusCode {
		case http.StatusOK:
			ok++
		case http.StatusServiceUnavailable:
			refused++
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("a refused stream has no Retry-After")
			}
		default:
			t.Errorf("stream %d: %s", i, resp.Status)
		}
	}
	if ok == 0 || ok > 8 {
		t.Errorf("%d of %d event streams served; want 1 to 8 (the cap)", ok, n)
	}
	resp, err := http.Get("http://" + d.http + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("healthz with %d streams open: %v %v", ok, resp, err)
	}
	if resp != nil {
		resp.Body.Close()
	}
	attack(t, fmt.Sprintf("%d concurrent GET /console/events", n), fmt.Sprintf("%d served, %d refused 503", ok, refused))
}
