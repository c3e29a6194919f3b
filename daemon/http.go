package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hallguard/hallguard/daemon/api"
	"github.com/hallguard/hallguard/daemon/config"
)

// The daemon's HTTP surface has two listeners (issue #12 §2):
//
//   - http.listen, for operations: /metrics and /healthz only. It may be
//     opened to the operations team's Prometheus.
//   - http.local_listen, for the box itself: the staff console, /api/*
//     (incidents, the journal) and, with -enable-reload, /-/reload.
//     Loopback unless TLS with client certificates is configured
//     (config validation refuses anything else).
//
// Every route on both checks Host and Origin (hostGuard).

// hostGuard refuses a request whose Host is not the box's (an IP literal,
// localhost, or a name in http.hosts): a page on another name that
// resolves to this box (DNS rebinding) gets 421 before any route. A
// request from a browser page of another origin (Origin or Sec-Fetch-Site)
// gets 403, whatever its method or Content-Type: a text/plain POST from
// another site is a "simple" request that no preflight stops.
func hostGuard(hosts []string, next http.Handler) http.Handler {
	allowed := map[string]bool{"localhost": true}
	for _, h := range hosts {
		allowed[strings.ToLower(h)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.ToLower(strings.Trim(host, "[]"))
		if net.ParseIP(host) == nil && !allowed[host] {
			http.Error(w, "hallguard: host not allowed", http.StatusMisdirectedRequest)
			return
		}
		if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host && o != "https://"+r.Host {
			http.Error(w, "hallguard: cross-origin request refused", http.StatusForbidden)
			return
		}
		if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
			http.Error(w, "hallguard: cross-site request refused", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// opsRoutes is the operations listener: metrics and health, nothing that
// acts or names an incident.
func (d *Daemon) opsRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.metrics.Registry, promhttp.HandlerOpts{Registry: d.metrics.Registry}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		status := map[string]any{"ready": d.ready.Load(), "mqtt_connected": d.pub.Connected(), "reports_pending": d.pub.Pending(), "hall": d.cfg.Hall.ID}
		if !d.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(status)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "hallguard %s\n/metrics  Prometheus metrics\n/healthz  readiness\n", Version)
	})
	return hostGuard(d.cfg.HTTP.Hosts, mux)
}

// localRoutes is the local listener: the console, the API and reload.
func (d *Daemon) localRoutes() http.Handler {
	mux := http.NewServeMux()
	api.JournalRoutes(mux, d.store, d.log)
	if d.console != nil {
		d.console.Mount(mux)
	}
	mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		if !d.enableReload {
			// As Prometheus without --web.enable-lifecycle.
			http.Error(w, "reload over HTTP is off: start with -enable-reload, or send SIGHUP", http.StatusForbidden)
			return
		}
		if r.Method != http.MethodPost {
			http.Error(w, "POST to reload the config", http.StatusMethodNotAllowed)
			return
		}
		if err := d.Reload(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, "reloaded")
	})
	mux.Handle("/api/incidents", api.IncidentsHandler(d.eng))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "hallguard %s for %s\n/console/  the staff console\n/api/incidents?state=open|closed&limit=&before=  incidents as JSON, newest first, paged\n/api/journal/verify, /api/journal/export?format=jsonl|csv&since=&until=&playbook=&incident=&kind=&drill=\n/-/reload  POST (with -enable-reload)\n", Version, d.config().Hall.Name)
	})
	return hostGuard(d.cfg.HTTP.Hosts, mux)
}

// localTLS is the local listener's TLS with client certificates, or nil
// when it is plain (loopback).
func localTLS(c config.LocalTLS, cfg *config.Config) (*tls.Config, error) {
	if !c.Complete() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.Path(c.CertFile), cfg.Path(c.KeyFile))
	if err != nil {
		return nil, fmt.Errorf("daemon: http.local_tls: %w", err)
	}
	pem, err := os.ReadFile(cfg.Path(c.ClientCAFile))
	if err != nil {
		return nil, fmt.Errorf("daemon: http.local_tls.client_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("daemon: http.local_tls.client_ca_file: no PEM certificate in it")
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}, nil
}
