package console

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/devices/clock"
)

//go:embed assets
var assets embed.FS

// Engine is what the console needs of the engine.
type Engine interface {
	Do(engine.Command) (string, error)
	Incidents() []engine.Incident
	Queue() engine.QueueState
}

var _ Engine = (*engine.Engine)(nil)

// Options are the console's collaborators. Engine and Config are required.
type Options struct {
	Engine Engine
	Config *config.Config
	// Connected reports the MQTT connection to the center.
	Connected func() bool
	Clock     clock.Clock
	Logger    *slog.Logger
	// Record journals a record, as the daemon's recorder does for MQTT
	// commands (kind "command" or "command_rejected").
	Record func(kind, incident, playbook string, drill bool, data any)
	// Counted counts one command in hallguard_commands_total{verb,result}.
	Counted func(verb, result string)
	// Registerer takes the console's own metrics; nil: not registered.
	Registerer prometheus.Registerer
	// Poll is how often the event stream looks for a change (default 250ms).
	Poll time.Duration
	// MaxStreams caps the event streams open at once (default
	// DefaultMaxStreams): each one polls the engine.
	MaxStreams int
}

// Console serves the staff console under /console/.
type Console struct {
	eng       Engine
	connected func() bool
	clk       clock.Clock
	log       *slog.Logger
	record    func(kind, incident, playbook string, drill bool, data any)
	counted   func(verb, result string)
	poll      time.Duration

	token string // CSRF token, per process, in the page
	boot  string // changes on restart; not a secret
	idKey []byte // keys the staff members' opaque ids (per process)
	index *template.Template

	// switching is held for reading by every request, for writing by
	// Switch: a request sees one config from start to end, and a reload
	// changes the console and the engine together (issue #11 item 14).
	switching sync.RWMutex
	cur       atomic.Pointer[view]

	gate *gate
	// hashing bounds the PBKDF2 checks running at once: a burst of entries
	// queues instead of taking every core.
	hashing chan struct{}
	// streams holds one place per open event stream (Options.MaxStreams).
	streams chan struct{}

	pinFailures prometheus.Counter
	lockouts    prometheus.Counter
	refused     prometheus.Counter

	mu      sync.Mutex
	lengths []sample
}

// view is what the console takes from one config: switched as a whole.
type view struct {
	cfg   *config.Config
	staff map[string]member // by opaque id
	order []member          // as configured
	// labels maps a staff member's name to the label the page shows.
	labels map[string]string
	// duress is the duress PIN's hash; zero when none is configured.
	duress pinHash
}

// member is one staff member as the console knows them. The page sees
// only id and label, never the name (issue #12 §1: public data).
type member struct {
	id, name, label string
	hash            pinHash
}

// DefaultMaxStreams is how many event streams are served at once by
// default; past it a stream is refused with 503 and Retry-After.
const DefaultMaxStreams = 8

// New returns the console for o. It fails on a PIN hash it cannot parse
// (config validation has already checked their form).
func New(o Options) (*Console, error) {
	if o.Engine == nil || o.Config == nil {
		return nil, errors.New("console: Engine and Config are required")
	}
	c := &Console{eng: o.Engine, connected: o.Connected, clk: o.Clock, log: o.Logger,
		record: o.Record, counted: o.Counted, poll: o.Poll}
	if c.clk == nil {
		c.clk = clock.Real{}
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.record == nil {
		c.record = func(string, string, string, bool, any) {}
	}
	if c.counted == nil {
		c.counted = func(string, string) {}
	}
	if c.poll <= 0 {
		c.poll = 250 * time.Millisecond
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = DefaultMaxStreams
	}
	c.streams = make(chan struct{}, o.MaxStreams)
	c.hashing = make(chan struct{}, 2)
	c.token, c.boot = randomHex(32), randomHex(8)
	c.idKey = make([]byte, 32)
	_, _ = rand.Read(c.idKey)
	v, err := c.newView(o.Config)
	if err != nil {
		return nil, err
	}
	c.cur.Store(v)
	max, lockout := limits(o.Config)
	c.gate = newGate(max, lockout)
	if c.index, err = template.ParseFS(assets, "assets/index.html"); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	c.pinFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "hallguard_console_pin_failures_total",
		Help: "PIN entries refused at the staff console: a wrong PIN, the right one with an action that cannot be done (not told apart), or an entry while locked."})
	c.lockouts = prometheus.NewCounter(prometheus.CounterOpts{Name: "hallguard_console_lockouts_total",
		Help: "Times the staff console locked PIN entry, for one staff member or for everyone, after too many refused entries."})
	c.refused = prometheus.NewCounter(prometheus.CounterOpts{Name: "hallguard_console_streams_refused_total",
		Help: "Console event streams refused because the cap of open streams was reached."})
	if o.Registerer != nil {
		for _, m := range []prometheus.Collector{c.pinFailures, c.lockouts, c.refused} {
			if err := o.Registerer.Register(m); err != nil {
				return nil, fmt.Errorf("console: metrics: %w", err)
			}
		}
	}
	return c, nil
}

func limits(cfg *config.Config) (int, time.Duration) {
	max, lockout := cfg.Console.MaxPINFailures, cfg.Console.Lockout.D()
	if max <= 0 {
		max = 5
	}
	if lockout <= 0 {
		lockout = 5 * time.Minute
	}
	return max, lockout
}

// newView parses what the console needs of cfg.
func (c *Console) newView(cfg *config.Config) (*view, error) {
	v := &view{cfg: cfg, staff: map[string]member{}, labels: map[string]string{}}
	for i, s := range cfg.Console.Staff {
		h, err := parseHash(s.PINHash)
		if err != nil {
			return nil, fmt.Errorf("console: staff[%d] %s: %w", i, s.Name, err)
		}
		label := s.Label
		if label == "" {
			label = fmt.Sprintf("%d", i+1)
		}
		m := member{id: c.staffID(s.Name), name: s.Name, label: label, hash: h}
		v.staff[m.id] = m
		v.order = append(v.order, m)
		v.labels[s.Name] = label
	}
	if cfg.Console.DuressPINHash != "" {
		h, err := parseHash(cfg.Console.DuressPINHash)
		if err != nil {
			return nil, fmt.Errorf("console: duress_pin_hash: %w", err)
		}
		v.duress = h
	}
	return v, nil
}

// staffID is a staff member's opaque id for the page: stable for the
// process, not the name.
func (c *Console) staffID(name string) string {
	m := hmac.New(sha256.New, c.idKey)
	m.Write([]byte(name))
	return "s" + hex.EncodeToString(m.Sum(nil)[:6])
}

// Switch moves the console to cfg together with apply (the engine's and
// the daemon's switch), as one step: no request sees the console on one
// config and the engine on the other. Nothing is applied when cfg cannot
// be used. Issue #11 item 14.
func (c *Console) Switch(cfg *config.Config, apply func()) error {
	v, err := c.newView(cfg)
	if err != nil {
		return err
	}
	c.switching.Lock()
	defer c.switching.Unlock()
	if apply != nil {
		apply()
	}
	c.cur.Store(v)
	c.gate.reconfigure(limits(cfg))
	return nil
}

func (c *Console) view() *view { return c.cur.Load() }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Handler returns the console's routes; mount it at "/console/".
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /console/{$}", c.serveIndex)
	mux.HandleFunc("GET /console/assets/{file}", c.serveAsset)
	mux.HandleFunc("GET /console/api/state", c.serveState)
	mux.HandleFunc("GET /console/events", c.serveEvents)
	mux.HandleFunc("POST /console/api/action", c.serveAction)
	return c.guard(mux)
}

// guard applies what every console response needs: a Host that is an IP
// literal, localhost or a name in http.hosts, as on every route of the
// daemon (no DNS rebinding onto the token), and headers that keep the page
// out of frames and off caches.
func (c *Console) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if net.ParseIP(host) == nil && !strings.EqualFold(host, "localhost") && !c.namedHost(host) {
			http.Error(w, "console: host not allowed", http.StatusMisdirectedRequest)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// namedHost reports whether host is one of the config's http.hosts.
func (c *Console) namedHost(host string) bool {
	return slices.ContainsFunc(c.view().cfg.HTTP.Hosts, func(h string) bool { return strings.EqualFold(h, host) })
}

func (c *Console) serveIndex(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if err := c.index.Execute(&buf, map[string]string{"Token": c.token, "Boot": c.boot}); err != nil {
		http.Error(w, "console: page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

func (c *Console) serveAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == "index.html" || strings.Contains(name, "..") {
		http.NotFound(w, r)
		return
	}
	b, err := fs.ReadFile(assets, path.Join("assets", name))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		w.Header().Set("Content-Type", t)
	}
	_, _ = w.Write(b)
}

func (c *Console) stateJSON() []byte {
	c.switching.RLock()
	defer c.switching.RUnlock()
	b, err := json.Marshal(c.snapshot(c.view()))
	if err != nil { // the types above always encode
		c.log.Error("console state", "err", err)
	}
	return b
}

func (c *Console) serveState(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(c.stateJSON())
}

// streamRetry is what a refused event stream is told to wait, in seconds.
const streamRetry = 5

// serveEvents streams the state as Server-Sent Events: once at once, then
// whenever it changes (looked at every Poll). EventSource reconnects by
// itself after a restart; retry asks it to do so within a second. Past
// MaxStreams open streams a new one is refused with 503 and Retry-After
// (the page then polls /console/api/state and tries again), counted in
// hallguard_console_streams_refused_total; open streams are never cut.
func (c *Console) serveEvents(w http.ResponseWriter, r *http.Request) {
	select {
	case c.streams <- struct{}{}:
		defer func() { <-c.streams }()
	default:
		c.refused.Inc()
		w.Header().Set("Retry-After", fmt.Sprint(streamRetry))
		http.Error(w, "console: too many event streams", http.StatusServiceUnavailable)
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, "retry: 1000\n\n"); err != nil {
		return
	}
	ctx := r.Context()
	tick := time.NewTicker(c.poll)
	defer tick.Stop()
	var last []byte
	idle := 0
	for {
		b := c.stateJSON()
		if !bytes.Equal(b, last) {
			if _, err := fmt.Fprintf(w, "event: state\ndata: %s\n\n", b); err != nil {
				return
			}
			last, idle = b, 0
		} else if idle++; idle*int(c.poll/time.Millisecond) >= 15000 {
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return
			}
			idle = 0
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ActionRequest is what the page posts to /console/api/action.
type ActionRequest struct {
	Verb     engine.Verb `json:"verb"`     // ack, resolve, step, trigger, report, drill
	Incident string      `json:"incident"` // ack, resolve, step, report, drill stop
	Step     string      `json:"step"`
	Playbook string      `json:"playbook"` // trigger, drill start
	Variant  string      `json:"variant"`
	Action   string      `json:"action"` // drill: start or stop
	Records  []string    `json:"records"`
	Impact   *string     `json:"impact"`
	Control  *string     `json:"control"`
	Trend    *string     `json:"trend"`
	// Participants of a drill (§1.3); the staff member when empty.
	Participants []string `json:"participants"`
	// Staff is the staff member's opaque id from the state (never a name).
	Staff string `json:"staff"`
	PIN   string `json:"pin"`
}

// withoutPIN is the request as journalled: never the PIN.
func (a ActionRequest) withoutPIN() ActionRequest {
	a.PIN = ""
	return a
}

type actionReply struct {
	OK       bool   `json:"ok"`
	Incident string `json:"incident,omitempty"`
	Error    string `json:"error,omitempty"`
	// Reason is a fixed label: refused (a wrong PIN, or the right one with
	// an action that cannot be done: the two are not told apart), locked,
	// csrf, bad_request.
	Reason engine.Rejection `json:"reason,omitempty"`
}

// refusedReply is the one answer to a wrong PIN and to a refused action,
// so that an answer never confirms a PIN (issue #12 §1: no oracle). The
// journal keeps the real reason.
var refusedReply = actionReply{Error: "wrong PIN, or the action cannot be done now", Reason: engine.RejectRefused}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// ErrCSRF is the refusal of a state-changing request without the page's
// token, or from another origin.
var ErrCSRF = errors.New("console: cross-site request refused")

func (c *Console) checkCSRF(r *http.Request) error {
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Console-Token")), []byte(c.token)) != 1 {
		return ErrCSRF
	}
	if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host && o != "https://"+r.Host {
		return ErrCSRF
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" {
		return ErrCSRF
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return ErrCSRF
	}
	return nil
}

var verbs = map[engine.Verb]bool{engine.VerbAck: true, engine.VerbResolve: true, engine.VerbStep: true,
	engine.VerbTrigger: true, engine.VerbReport: true, engine.VerbDrill: true}

// errBadPIN is the journal's reason for a wrong PIN (never the page's).
var errBadPIN = errors.New("console: wrong PIN")

// match checks pin against h, at most two such checks at a time.
func (c *Console) match(h pinHash, pin string) bool {
	c.hashing <- struct{}{}
	defer func() { <-c.hashing }()
	return h.match(pin)
}

func (c *Console) serveAction(w http.ResponseWriter, r *http.Request) {
	if err := c.checkCSRF(r); err != nil {
		writeJSON(w, http.StatusForbidden, actionReply{Error: "reload the page", Reason: engine.RejectCSRF})
		return
	}
	var req ActionRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || !verbs[req.Verb] {
		writeJSON(w, http.StatusBadRequest, actionReply{Error: "bad request", Reason: engine.RejectBadRequest})
		return
	}
	c.switching.RLock()
	defer c.switching.RUnlock()
	v := c.view()
	m, known := v.staff[req.Staff]

	// The duress PIN first, before any lockout (§4.3(a)2; issue #11 item
	// 13): it raises the silent duress playbook and does the action as the
	// ordinary PIN would, locked or not, with the ordinary PIN's answer.
	// Both hashes are computed, so it takes as long as any other entry.
	if known && v.duress.hash != nil && c.match(v.duress, req.PIN) {
		c.match(m.hash, req.PIN)
		c.duressAlarm(m, req)
		inc, err := c.do(v, m, req)
		if err != nil {
			c.pinFailures.Inc()
			c.counted(req.Verb.String(), engine.RejectRefused.String())
			writeJSON(w, http.StatusForbidden, refusedReply)
			return
		}
		writeJSON(w, http.StatusOK, actionReply{OK: true, Incident: inc})
		return
	}

	now := c.clk.Now()
	account := "" // unknown ids share one account
	if known {
		account = m.name
	}
	if !c.gate.admit(account, now) {
		c.pinFailures.Inc()
		if c.gate.noteLocked(account, now) { // counted always, journalled once a minute per account
			c.record("command_rejected", "", "", false, map[string]any{"verb": req.Verb, "reason": engine.RejectLocked, "staff": m.name, "via": "console"})
		}
		writeJSON(w, http.StatusTooManyRequests, actionReply{Error: "too many refused PIN entries: wait", Reason: engine.RejectLocked})
		return
	}
	var inc string
	err := errBadPIN
	if known && c.match(m.hash, req.PIN) {
		inc, err = c.do(v, m, req)
	}
	if err != nil {
		c.pinFailures.Inc()
		if c.gate.done(account, now, false) {
			c.lockouts.Inc()
			c.log.Warn("console PIN entry locked", "for_seconds", c.gate.lockedFor(account, now).Seconds())
		}
		c.counted(req.Verb.String(), engine.RejectRefused.String())
		if errors.Is(err, errBadPIN) {
			c.record("command_rejected", "", "", false, map[string]any{"verb": req.Verb, "reason": engine.RejectBadPIN, "staff": m.name, "via": "console"})
			c.log.Warn("console: wrong PIN", "verb", req.Verb)
		}
		writeJSON(w, http.StatusForbidden, refusedReply)
		return
	}
	c.gate.done(account, now, true)
	writeJSON(w, http.StatusOK, actionReply{OK: true, Incident: inc})
}

// errHidden refuses a target the console does not show (a silent
// playbook, or no such open incident): the console never acts on silence.
var errHidden = fmt.Errorf("%w: no such incident", engine.ErrUnknownIncident)

// do checks the request against what the console shows and carries it out
// as a staff command, journalled and counted as MQTT commands are.
func (c *Console) do(v *view, m member, req ActionRequest) (string, error) {
	cfg := v.cfg
	cmd := engine.Command{ID: "console-" + randomHex(6), Verb: req.Verb, Incident: req.Incident, Step: req.Step,
		Playbook: req.Playbook, Variant: req.Variant, By: m.name, Origin: engine.OriginStaff,
		Records: req.Records, Impact: req.Impact, Control: req.Control, Trend: req.Trend, Action: req.Action}
	var err error
	switch {
	case req.Verb == engine.VerbTrigger:
		if pb := cfg.Playbook(req.Playbook); pb == nil || silent(cfg, pb.ID) || !pb.Manual {
			err = fmt.Errorf("%w: no manual playbook %q", engine.ErrBadCommand, req.Playbook)
		}
	case req.Verb == engine.VerbDrill && req.Action == engine.DrillStart:
		if silent(cfg, req.Playbook) {
			err = fmt.Errorf("%w: no playbook %q", engine.ErrBadCommand, req.Playbook)
		}
		cmd.Participants = req.Participants
		if len(cmd.Participants) == 0 {
			cmd.Participants = []string{m.name}
		}
		cmd.Incident = ""
	case req.Verb == engine.VerbDrill && req.Action == engine.DrillStop:
		if !c.shown(cfg, req.Incident) {
			err = errHidden
		}
		cmd.Drill = req.Incident
	case req.Verb == engine.VerbDrill:
		err = fmt.Errorf("%w: drill action must be start or stop", engine.ErrBadCommand)
	default:
		if !c.shown(cfg, req.Incident) {
			err = errHidden
		}
	}
	inc := req.Incident
	if err == nil {
		inc, err = c.eng.Do(cmd)
	}
	if err != nil { // counted by the caller: refused, whatever the reason
		c.record("command_rejected", inc, "", false, map[string]any{"id": cmd.ID, "verb": req.Verb, "by": m.name,
			"reason": engine.Reason(err), "error": err.Error(), "via": "console", "payload": req.withoutPIN()})
		c.log.Warn("console command rejected", "id", cmd.ID, "verb", req.Verb, "by", m.name, "reason", engine.Reason(err))
		return inc, err
	}
	c.counted(req.Verb.String(), "ok")
	c.record("command", inc, "", false, map[string]any{"id": cmd.ID, "verb": req.Verb, "by": m.name,
		"origin": engine.OriginStaff, "via": "console", "pin": true, "payload": req.withoutPIN()})
	c.log.Info("command", "id", cmd.ID, "verb", req.Verb, "incident", inc, "by", m.name, "via", "console")
	return inc, nil
}

// DuressPlaybook is the silent playbook the duress PIN raises (§4.3).
const DuressPlaybook = "duress"

// duressAlarm raises the silent duress playbook for a duress PIN, or, if
// one is open already, adds a report update to it. Nothing of it reaches
// the page: the reply is the requested action's.
func (c *Console) duressAlarm(m member, req ActionRequest) {
	id := "console-" + randomHex(6)
	why := fmt.Sprintf("duress PIN entered at the staff console by %s (for %s)", m.name, req.Verb)
	inc, err := c.eng.Do(engine.Command{ID: id, Verb: engine.VerbTrigger, Playbook: DuressPlaybook, By: m.name,
		Origin: engine.OriginStaff, Reason: why})
	verb := engine.VerbTrigger
	if errors.Is(err, engine.ErrNotAllowed) && inc != "" {
		verb = engine.VerbReport
		other := why
		inc, err = c.eng.Do(engine.Command{ID: id, Verb: engine.VerbReport, Incident: inc, By: m.name,
			Origin: engine.OriginStaff, Other: &other})
	}
	if err != nil {
		c.counted(verb.String(), engine.Reason(err).String())
		c.record("command_rejected", inc, DuressPlaybook, false, map[string]any{"id": id, "verb": verb, "by": m.name,
			"playbook": DuressPlaybook, "reason": engine.Reason(err), "error": err.Error(), "via": "console", "duress": true})
		c.log.Error("duress alarm not raised", "err", err)
		return
	}
	c.counted(verb.String(), "ok")
	c.record("command", inc, DuressPlaybook, false, map[string]any{"id": id, "verb": verb, "by": m.name,
		"playbook": DuressPlaybook, "origin": engine.OriginStaff, "via": "console", "duress": true, "for": req.Verb})
	c.log.Info("command", "id", id, "verb", verb, "incident", inc, "by", m.name, "via", "console")
}

// shown reports whether the incident is one the console shows.
func (c *Console) shown(cfg *config.Config, id string) bool {
	for _, inc := range visible(cfg, c.eng.Incidents()) {
		if inc.ID == id {
			return true
		}
	}
	return false
}

// Mount adds the console to mux at /console/.
func (c *Console) Mount(mux *http.ServeMux) {
	mux.Handle("/console/", c.Handler())
	mux.Handle("/console", http.RedirectHandler("/console/", http.StatusFound))
}
