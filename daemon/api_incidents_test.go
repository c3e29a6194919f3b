package daemon_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon/api"
	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/daemon/engine/enginetest"
	"github.com/hallguard/hallguard/devices/clock"
)

// /api/incidents pages its results: newest first, ?limit=, ?before= (the
// id in the Link rel="next" of the page before) and ?state=open|closed.
func TestAPIIncidentsPages(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("..", "configs"))
	cfg, err := config.Parse(filepath.Join(root, "daemon-test.yaml"), []byte(hallYAML+"state_dir: "+t.TempDir()+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	eng := engine.New(cfg, (&enginetest.Sink{}).Sinks(), engine.WithClock(clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))),
		engine.WithIDs(func(time.Time) string { n++; return fmt.Sprintf("inc-%03d", n) }))
	eng.Start()
	defer eng.Close()
	for i := 0; i < 5; i++ {
		id, err := eng.Do(engine.Command{Verb: engine.VerbTrigger, Playbook: "illness", By: "Chen", Origin: engine.OriginStaff})
		if err != nil {
			t.Fatal(err)
		}
		if i < 4 {
			if _, err := eng.Do(engine.Command{Verb: engine.VerbResolve, Incident: id, By: "Chen", Origin: engine.OriginStaff}); err != nil {
				t.Fatal(err)
			}
		}
	}
	srv := httptest.NewServer(api.IncidentsHandler(eng))
	defer srv.Close()
	get := func(q string) ([]engine.Incident, string, int) {
		t.Helper()
		resp, err := http.Get(srv.URL + "/api/incidents" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var incs []engine.Incident
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&incs); err != nil {
				t.Fatal(err)
			}
		}
		return incs, resp.Header.Get("Link"), resp.StatusCode
	}
	ids := func(incs []engine.Incident) string {
		s := ""
		for _, inc := range incs {
			s += inc.ID + " "
		}
		return s
	}
	incs, link, code := get("?limit=2")
	if code != 200 || ids(incs) != "inc-005 inc-004 " || link != `</api/incidents?before=inc-004&limit=2>; rel="next"` {
		t.Fatalf("first page: %d %q link %q", code, ids(incs), link)
	}
	if incs, link, _ = get("?limit=2&before=inc-004"); ids(incs) != "inc-003 inc-002 " || link == "" {
		t.Errorf("second page: %q link %q", ids(incs), link)
	}
	if incs, link, _ = get("?limit=2&before=inc-002"); ids(incs) != "inc-001 " || link != "" {
		t.Errorf("last page: %q link %q", ids(incs), link)
	}
	if incs, _, _ = get("?state=open"); ids(incs) != "inc-005 " {
		t.Errorf("open: %q", ids(incs))
	}
	if incs, link, _ = get("?state=closed&limit=3"); ids(incs) != "inc-004 inc-003 inc-002 " ||
		link != `</api/incidents?before=inc-002&limit=3&state=closed>; rel="next"` {
		t.Errorf("closed: %q link %q", ids(incs), link)
	}
	if incs, _, _ = get(""); len(incs) != 5 {
		t.Errorf("default page: %d incidents", len(incs))
	}
	for _, bad := range []string{"?limit=0", "?limit=1001", "?limit=x", "?state=gone"} {
		if _, _, code := get(bad); code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", bad, code)
		}
	}
}
