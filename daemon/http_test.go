package daemon_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon"
	"github.com/hallguard/hallguard/daemon/engine"
)

// Issue #12 §2 (the HTTP surface) and issue #11 item 14 (reload applies
// what it says), on the daemon in this process.

func do(t *testing.T, method, url string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestListenersSplitOperationsFromLocal: http.listen serves /metrics and
// /healthz only; the console, /api/* and reload are on the local listener.
func TestListenersSplitOperationsFromLocal(t *testing.T) {
	r := startHall(t, fromFile(t.TempDir()))
	ops, local := "http://"+r.d.HTTPAddr(), "http://"+r.d.LocalAddr()
	for _, tc := range []struct {
		url  string
		want int
	}{
		{ops + "/metrics", 200}, {ops + "/healthz", 200},
		{ops + "/api/incidents", 404}, {ops + "/api/journal/export", 404}, {ops + "/api/journal/verify", 404},
		{ops + "/console/", 404}, {ops + "/console/api/state", 404},
		{local + "/api/incidents", 200}, {local + "/api/journal/verify", 200}, {local + "/api/journal/export", 200},
		{local + "/console/", 200}, {local + "/console/api/state", 200},
	} {
		if code, body := do(t, http.MethodGet, tc.url, nil); code != tc.want {
			t.Errorf("GET %s: %d, want %d (%.80s)", tc.url, code, tc.want, body)
		}
	}
	if code, _ := do(t, http.MethodPost, ops+"/-/reload", nil); code != http.StatusNotFound {
		t.Errorf("POST /-/reload on http.listen: %d, want 404", code)
	}
}

// TestEveryRouteChecksHostAndOrigin: on both listeners, a foreign Host is
// 421 and a request from another origin is 403, whatever the route.
func TestEveryRouteChecksHostAndOrigin(t *testing.T) {
	r := startHall(t, fromFile(t.TempDir()), withOptions(daemon.Options{EnableReload: true}))
	ops, local := "http://"+r.d.HTTPAddr(), "http://"+r.d.LocalAddr()
	routes := []struct{ method, url string }{
		{"GET", ops + "/metrics"}, {"GET", ops + "/healthz"}, {"GET", ops + "/"},
		{"GET", local + "/api/incidents"}, {"GET", local + "/api/journal/export"}, {"GET", local + "/api/journal/verify"},
		{"GET", local + "/console/api/state"}, {"GET", local + "/console/"}, {"POST", local + "/-/reload"}, {"GET", local + "/"},
	}
	for _, rt := range routes {
		for _, tc := range []struct {
			name string
			hdr  map[string]string
			want int
		}{
			{"Host evil.example", map[string]string{"Host": "evil.example"}, http.StatusMisdirectedRequest},
			{"Host evil.example:9465", map[string]string{"Host": "evil.example:9465"}, http.StatusMisdirectedRequest},
			{"Origin evil.example", map[string]string{"Origin": "http://evil.example", "Content-Type": "text/plain"}, http.StatusForbidden},
			{"Sec-Fetch-Site cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		} {
			if code, body := do(t, rt.method, rt.url, tc.hdr); code != tc.want {
				t.Errorf("%s %s with %s: %d, want %d (%.80s)", rt.method, rt.url, tc.name, code, tc.want, body)
			}
		}
	}
	if v := reloadsOK(t, r); v != "0" {
		t.Errorf("reloads done by refused requests: %s", v)
	}
	// The box itself, by IP or localhost, same-origin: served.
	if code, _ := do(t, http.MethodGet, local+"/api/incidents", map[string]string{"Origin": local, "Sec-Fetch-Site": "same-origin"}); code != http.StatusOK {
		t.Errorf("same-origin GET /api/incidents: %d, want 200", code)
	}
}

// TestHTTPHostsAllowsConfiguredNames: localhost and a name in http.hosts
// (how Prometheus scrapes a hall) are served; other names are not.
func TestHTTPHostsAllowsConfiguredNames(t *testing.T) {
	r := startHall(t, fromFile(t.TempDir()), withExtra("http: {listen: \"127.0.0.1:0\", local_listen: \"127.0.0.1:0\", hosts: [hall-07.branch.example]}\n"))
	for host, want := range map[string]int{"localhost": 200, "hall-07.branch.example:9464": 200, "HALL-07.branch.example": 200,
		"hall-08.branch.example": http.StatusMisdirectedRequest} {
		if code, _ := do(t, http.MethodGet, "http://"+r.d.HTTPAddr()+"/metrics", map[string]string{"Host": host}); code != want {
			t.Errorf("Host %s: %d, want %d", host, code, want)
		}
	}
}

func reloadsOK(t *testing.T, r *running) string {
	t.Helper()
	for _, l := range strings.Split(r.metrics(), "\n") {
		if v, ok := strings.CutPrefix(l, `hallguard_config_reloads_total{result="ok"} `); ok {
			return v
		}
	}
	return ""
}

// TestReloadOverHTTPOffUnlessEnabled: without EnableReload (-enable-reload)
// POST /-/reload is refused and reloads nothing; with it, it reloads.
func TestReloadOverHTTPOffUnlessEnabled(t *testing.T) {
	r := startHall(t, fromFile(t.TempDir()))
	if code, _ := do(t, http.MethodPost, "http://"+r.d.LocalAddr()+"/-/reload", nil); code != http.StatusForbidden {
		t.Errorf("POST /-/reload, not enabled: %d, want 403", code)
	}
	if v := reloadsOK(t, r); v != "0" {
		t.Errorf("reloads ok = %s, want 0", v)
	}
	r2 := startHall(t, fromFile(t.TempDir()), withOptions(daemon.Options{EnableReload: true}))
	if code, body := do(t, http.MethodPost, "http://"+r2.d.LocalAddr()+"/-/reload", nil); code != http.StatusOK {
		t.Errorf("POST /-/reload, enabled: %d %s, want 200", code, body)
	}
	if v := reloadsOK(t, r2); v != "1" {
		t.Errorf("reloads ok = %s, want 1", v)
	}
}

const consoleYAML = `console:
  staff:
    - {name: Chen Jing, pin_hash: "pbkdf2-sha256$100000$v8JHrQPCZU5ZCGi8IqMj7A==$RYRnTi6p05b+iTe4viuz0K52g4NEAg3nMZKf2AQ+hlI="}
`

// TestReloadSwitchesTheConsole (issue #11 item 14): a reload that removes
// a staff member and makes a playbook silent is in force in the console
// as soon as Reload returns; one that changes the probe, read only at
// start, is refused as needs_restart.
func TestReloadSwitchesTheConsole(t *testing.T) {
	r := startHall(t, fromFile(t.TempDir()), withExtra(consoleYAML))
	path := r.file
	local := "http://" + r.d.LocalAddr()
	if _, st := do(t, http.MethodGet, local+"/console/api/state", nil); strings.Contains(st, `"staff":[]`) {
		t.Fatalf("state before the reload has no staff: %s", st)
	}
	b, _ := os.ReadFile(path)
	next := strings.Replace(string(b), consoleYAML, "console: {staff: []}\n", 1)
	if err := os.WriteFile(path, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, st := do(t, http.MethodGet, local+"/console/api/state", nil); !strings.Contains(st, `"staff":[]`) {
		t.Errorf("the console still lists the removed staff member after the reload: %s", st)
	}
	// The probe is read once at start: a change needs a restart.
	if err := os.WriteFile(path, []byte(next+"probe: {address: \"127.0.0.1:1\", interval: 30s}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.d.Reload(); !errors.Is(err, daemon.ErrNeedsRestart) || !strings.Contains(err.Error(), "probe") {
		t.Errorf("reload changing the probe: %v, want needs_restart naming probe", err)
	}
}

// tlsFiles writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all signed by the CA, and returns their paths and a client
// TLS config holding the client certificate.
func tlsFiles(t *testing.T, dir string) (cert, key, ca string, client *tls.Config) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := newKey()
	caTpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kiosk CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage, ip bool) (*ecdsa.PrivateKey, []byte) {
		k := newKey()
		tpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "hallguard"}, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature}
		if ip {
			tpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return k, der
	}
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca = write("ca.pem", "CERTIFICATE", caDER)
	sk, sder := issue(2, x509.ExtKeyUsageServerAuth, true)
	cert = write("local.pem", "CERTIFICATE", sder)
	skb, _ := x509.MarshalECPrivateKey(sk)
	key = write("local.key", "EC PRIVATE KEY", skb)
	ck, cder := issue(3, x509.ExtKeyUsageClientAuth, false)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	client = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{{Certificate: [][]byte{cder}, PrivateKey: ck}}}
	return cert, key, ca, client
}

// TestLocalListenerTLSNeedsAClientCertificate: with http.local_tls the
// local listener speaks TLS and serves only clients with a certificate
// from client_ca_file.
func TestLocalListenerTLSNeedsAClientCertificate(t *testing.T) {
	dir := t.TempDir()
	cert, key, ca, client := tlsFiles(t, dir)
	r := startHall(t, fromFile(t.TempDir()), withExtra("http:\n  listen: \"127.0.0.1:0\"\n  local_listen: \"127.0.0.1:0\"\n  local_tls: {cert_file: "+cert+", key_file: "+key+", client_ca_file: "+ca+"}\n"))
	u := "https://" + r.d.LocalAddr() + "/api/incidents"
	with := &http.Client{Transport: &http.Transport{TLSClientConfig: client}, Timeout: 5 * time.Second}
	resp, err := with.Get(u)
	if err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("with a client certificate: %s, want 200", resp.Status)
	}
	noCert := client.Clone()
	noCert.Certificates = nil
	without := &http.Client{Transport: &http.Transport{TLSClientConfig: noCert}, Timeout: 5 * time.Second}
	if resp, err := without.Get(u); err == nil {
		resp.Body.Close()
		t.Errorf("without a client certificate: %s, want the handshake refused", resp.Status)
	}
	if resp, err := http.Get("http://" + r.d.LocalAddr() + "/api/incidents"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP to the TLS listener: %s %q", resp.Status, b)
		}
	}
}

// TestListenersRefuseHugeHeaders: a request with 64 KiB of headers is
// refused (431) on both listeners instead of being read into memory.
func TestListenersRefuseHugeHeaders(t *testing.T) {
	r := startHall(t, fromFile(t.TempDir()))
	big := strings.Repeat("a", 64<<10)
	for _, addr := range []string{r.d.HTTPAddr(), r.d.LocalAddr()} {
		if code, _ := do(t, http.MethodGet, "http://"+addr+"/healthz", map[string]string{"X-Junk": big}); code != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("%s: 64 KiB of headers: %d, want 431", addr, code)
		}
	}
}

// TestReloadSwitchesTheDaemonsOwnReaders (issue #11 item 14): the CCTV
// bookmark request of a step done after a reload goes to the reloaded
// cctv.topic, as the reload said it would.
func TestReloadSwitchesTheDaemonsOwnReaders(t *testing.T) {
	r := startHall(t, fromFile(t.TempDir()), withExtra("cctv: {topic: cctv/before}\n"))
	path := r.file
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), "cctv/before", "cctv/after", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.d.Reload(); err != nil {
		t.Fatal(err)
	}
	eng := r.d.Engine()
	inc, err := eng.Do(engine.Command{ID: "t-1", Verb: engine.VerbTrigger, Playbook: "illness", By: "Chen Jing", Origin: engine.OriginStaff})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Do(engine.Command{ID: "t-2", Verb: engine.VerbStep, Incident: inc, Step: "preserve_cctv", By: "Chen Jing", Origin: engine.OriginStaff}); err != nil {
		t.Fatal(err)
	}
	var body string
	r.eventually("the cctv journal record", func() bool {
		_, body = do(t, http.MethodGet, "http://"+r.d.LocalAddr()+"/api/journal/export?kind=cctv", nil)
		return strings.Contains(body, `"kind":"cctv"`)
	})
	if !strings.Contains(body, `"topic":"cctv/after"`) {
		t.Errorf("the bookmark after the reload went to the old topic: %s", body)
	}
}

// TestReloadOfADiscoveredHallNameNeedsRestart: the name Home Assistant was
// given at start cannot change live; without discovery it can.
func TestReloadOfADiscoveredHallNameNeedsRestart(t *testing.T) {
	for _, discovery := range []bool{true, false} {
		extra := ""
		if discovery {
			extra = "mqtt: {broker: embedded, listen: \"127.0.0.1:0\", discovery: {enabled: true}}\n"
		}
		r := startHall(t, fromFile(t.TempDir()), withExtra(extra))
		path := r.file
		b, _ := os.ReadFile(path)
		if err := os.WriteFile(path, []byte(strings.Replace(string(b), "name: Test hall", "name: Renamed hall", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		err := r.d.Reload()
		if discovery && (!errors.Is(err, daemon.ErrNeedsRestart) || !strings.Contains(err.Error(), "hall.name")) {
			t.Errorf("with discovery: reload of hall.name: %v, want needs_restart naming hall.name", err)
		}
		if !discovery && err != nil {
			t.Errorf("without discovery: reload of hall.name: %v, want ok", err)
		}
	}
}
