package console

import (
	"bytes"
	"crypto/rand"
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
	"strings"
	"sync"
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
}

// Console serves the staff console under /console/.
type Console struct {
	eng       Engine
	cfg       *config.Config
	connected func() bool
	clk       clock.Clock
	log       *slog.Logger
	record    func(kind, incident, playbook string, drill bool, data any)
	counted   func(verb, result string)
	poll      time.Duration

	token string // CSRF token, per process, in the page
	boot  string // changes on restart; not a secret
	index *template.Template
	staff map[string]pinHash
	// duress is the duress PIN's hash; zero when none is configured.
	duress  pinHash
	limiter *limiter

	pinFailures prometheus.Counter
	lockouts    prometheus.Counter

	mu      sync.Mutex
	lengths []sample
}

// New returns the console for o. It fails on a PIN hash it cannot parse
// (config validation has already checked their form).
func New(o Options) (*Console, error) {
	if o.Engine == nil || o.Config == nil {
		return nil, errors.New("console: Engine and Config are required")
	}
	c := &Console{eng: o.Engine, cfg: o.Config, connected: o.Connected, clk: o.Clock, log: o.Logger,
		record: o.Record, counted: o.Counted, poll: o.Poll, staff: map[string]pinHash{}}
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
	c.token, c.boot = randomHex(32), randomHex(8)
	for i, s := range o.Config.Console.Staff {
		h, err := parseHash(s.PINHash)
		if err != nil {
			return nil, fmt.Errorf("console: staff[%d] %s: %w", i, s.Name, err)
		}
		c.staff[s.Name] = h
	}
	if o.Config.Console.DuressPINHash != "" {
		h, err := parseHash(o.Config.Console.DuressPINHash)
		if err != nil {
			return nil, fmt.Errorf("console: duress_pin_hash: %w", err)
		}
		c.duress = h
	}
	max, lockout := o.Config.Console.MaxPINFailures, o.Config.Console.Lockout.D()
	if max <= 0 {
		max = 5
	}
	if lockout <= 0 {
		lockout = 5 * time.Minute
	}
	c.limiter = &limiter{max: max, window: lockout}
	var err error
	if c.index, err = template.ParseFS(assets, "assets/index.html"); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	c.pinFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "hallguard_console_pin_failures_total",
		Help: "Wrong PINs entered at the staff console (and PIN entries refused while it was locked)."})
	c.lockouts = prometheus.NewCounter(prometheus.CounterOpts{Name: "hallguard_console_lockouts_total",
		Help: "Times the staff console locked PIN entry after console.max_pin_failures wrong PINs."})
	if o.Registerer != nil {
		if err := o.Registerer.Register(c.pinFailures); err != nil {
			return nil, fmt.Errorf("console: metrics: %w", err)
		}
		if err := o.Registerer.Register(c.lockouts); err != nil {
			return nil, fmt.Errorf("console: metrics: %w", err)
		}
	}
	return c, nil
}

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
// literal or localhost (no DNS rebinding onto the token), and headers that
// keep the page out of frames and off caches.
func (c *Console) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if net.ParseIP(host) == nil && host != "localhost" {
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
	b, err := json.Marshal(c.snapshot())
	if err != nil { // the types above always encode
		c.log.Error("console state", "err", err)
	}
	return b
}

func (c *Console) serveState(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(c.stateJSON())
}

// serveEvents streams the state as Server-Sent Events: once at once, then
// whenever it changes (looked at every Poll). EventSource reconnects by
// itself after a restart; retry asks it to do so within a second.
func (c *Console) serveEvents(w http.ResponseWriter, r *http.Request) {
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
	Verb     string   `json:"verb"`     // ack, resolve, step, trigger, report, drill
	Incident string   `json:"incident"` // ack, resolve, step, report, drill stop
	Step     string   `json:"step"`
	Playbook string   `json:"playbook"` // trigger, drill start
	Variant  string   `json:"variant"`
	Action   string   `json:"action"` // drill: start or stop
	Records  []string `json:"records"`
	Impact   *string  `json:"impact"`
	Control  *string  `json:"control"`
	Trend    *string  `json:"trend"`
	// Participants of a drill (§1.3); the staff member when empty.
	Participants []string `json:"participants"`
	Staff        string   `json:"staff"`
	PIN          string   `json:"pin"`
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
	// Reason is a fixed label: bad_pin, locked, csrf, bad_request,
	// not_allowed, unknown_incident, bad_payload.
	Reason string `json:"reason,omitempty"`
}

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
	if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
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

var verbs = map[string]bool{engine.VerbAck: true, engine.VerbResolve: true, engine.VerbStep: true,
	engine.VerbTrigger: true, engine.VerbReport: true, engine.VerbDrill: true}

func (c *Console) serveAction(w http.ResponseWriter, r *http.Request) {
	if err := c.checkCSRF(r); err != nil {
		writeJSON(w, http.StatusForbidden, actionReply{Error: "reload the page", Reason: "csrf"})
		return
	}
	var req ActionRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || !verbs[req.Verb] {
		writeJSON(w, http.StatusBadRequest, actionReply{Error: "bad request", Reason: "bad_request"})
		return
	}
	now := c.clk.Now()
	if c.limiter.locked(now) {
		c.pinFailures.Inc()
		c.record("command_rejected", "", "", false, map[string]any{"verb": req.Verb, "reason": "locked", "staff": req.Staff, "via": "console"})
		writeJSON(w, http.StatusTooManyRequests, actionReply{Error: "too many wrong PINs: wait", Reason: "locked"})
		return
	}
	staff, ok := c.staff[req.Staff]
	if !ok {
		staff = pinHash{} // an unknown name still costs the duress check
	}
	// Both hashes are always computed, so a duress PIN takes as long as
	// any other.
	isStaff := staff.match(req.PIN)
	isDuress := c.duress.match(req.PIN) && ok
	if !isStaff && !isDuress {
		c.pinFailures.Inc()
		if c.limiter.fail(now) {
			c.lockouts.Inc()
			c.log.Warn("console PIN entry locked", "for_seconds", c.limiter.window.Seconds())
		}
		c.record("command_rejected", "", "", false, map[string]any{"verb": req.Verb, "reason": "bad_pin", "staff": req.Staff, "via": "console"})
		c.log.Warn("console: wrong PIN", "verb", req.Verb)
		writeJSON(w, http.StatusForbidden, actionReply{Error: "wrong PIN", Reason: "bad_pin"})
		return
	}
	if isDuress && !isStaff {
		c.duressAlarm(req)
	}
	inc, err := c.do(req)
	if err != nil {
		code := http.StatusConflict
		if errors.Is(err, engine.ErrBadCommand) || errors.Is(err, errHidden) {
			code = http.StatusBadRequest
		}
		writeJSON(w, code, actionReply{Error: c.safeError(err), Reason: engine.Reason(err)})
		return
	}
	writeJSON(w, http.StatusOK, actionReply{OK: true, Incident: inc})
}

// errHidden refuses a target the console does not show (a silent
// playbook, or no such open incident): the console never acts on silence.
var errHidden = fmt.Errorf("%w: no such incident", engine.ErrUnknownIncident)

// do checks the request against what the console shows and carries it out
// as a staff command, journalled and counted as MQTT commands are.
func (c *Console) do(req ActionRequest) (string, error) {
	cmd := engine.Command{ID: "console-" + randomHex(6), Verb: req.Verb, Incident: req.Incident, Step: req.Step,
		Playbook: req.Playbook, Variant: req.Variant, By: req.Staff, Origin: engine.OriginStaff,
		Records: req.Records, Impact: req.Impact, Control: req.Control, Trend: req.Trend, Action: req.Action}
	var err error
	switch {
	case req.Verb == engine.VerbTrigger:
		if pb := c.cfg.Playbook(req.Playbook); pb == nil || silent(c.cfg, pb.ID) || !pb.Manual {
			err = fmt.Errorf("%w: no manual playbook %q", engine.ErrBadCommand, req.Playbook)
		}
	case req.Verb == engine.VerbDrill && req.Action == engine.DrillStart:
		if silent(c.cfg, req.Playbook) {
			err = fmt.Errorf("%w: no playbook %q", engine.ErrBadCommand, req.Playbook)
		}
		cmd.Participants = req.Participants
		if len(cmd.Participants) == 0 {
			cmd.Participants = []string{req.Staff}
		}
		cmd.Incident = ""
	case req.Verb == engine.VerbDrill && req.Action == engine.DrillStop:
		if !c.shown(req.Incident) {
			err = errHidden
		}
		cmd.Drill = req.Incident
	case req.Verb == engine.VerbDrill:
		err = fmt.Errorf("%w: drill action must be start or stop", engine.ErrBadCommand)
	default:
		if !c.shown(req.Incident) {
			err = errHidden
		}
	}
	inc := req.Incident
	if err == nil {
		inc, err = c.eng.Do(cmd)
	}
	if err != nil {
		c.counted(req.Verb, engine.Reason(err))
		c.record("command_rejected", inc, "", false, map[string]any{"id": cmd.ID, "verb": req.Verb, "by": req.Staff,
			"reason": engine.Reason(err), "error": err.Error(), "via": "console", "payload": req.withoutPIN()})
		c.log.Warn("console command rejected", "id", cmd.ID, "verb", req.Verb, "by", req.Staff, "reason", engine.Reason(err))
		return inc, err
	}
	c.counted(req.Verb, "ok")
	c.record("command", inc, "", false, map[string]any{"id": cmd.ID, "verb": req.Verb, "by": req.Staff,
		"origin": engine.OriginStaff, "via": "console", "pin": true, "payload": req.withoutPIN()})
	c.log.Info("command", "id", cmd.ID, "verb", req.Verb, "incident", inc, "by", req.Staff, "via", "console")
	return inc, nil
}

// DuressPlaybook is the silent playbook the duress PIN raises (§4.3).
const DuressPlaybook = "duress"

// duressAlarm raises the silent duress playbook for a duress PIN, or, if
// one is open already, adds a report update to it. Nothing of it reaches
// the page: the reply is the requested action's.
func (c *Console) duressAlarm(req ActionRequest) {
	id := "console-" + randomHex(6)
	why := fmt.Sprintf("duress PIN entered at the staff console by %s (for %s)", req.Staff, req.Verb)
	inc, err := c.eng.Do(engine.Command{ID: id, Verb: engine.VerbTrigger, Playbook: DuressPlaybook, By: req.Staff,
		Origin: engine.OriginStaff, Reason: why})
	verb := engine.VerbTrigger
	if errors.Is(err, engine.ErrNotAllowed) && inc != "" {
		verb = engine.VerbReport
		other := why
		inc, err = c.eng.Do(engine.Command{ID: id, Verb: engine.VerbReport, Incident: inc, By: req.Staff,
			Origin: engine.OriginStaff, Other: &other})
	}
	if err != nil {
		c.counted(verb, engine.Reason(err))
		c.record("command_rejected", inc, DuressPlaybook, false, map[string]any{"id": id, "verb": verb, "by": req.Staff,
			"playbook": DuressPlaybook, "reason": engine.Reason(err), "error": err.Error(), "via": "console", "duress": true})
		c.log.Error("duress alarm not raised", "err", err)
		return
	}
	c.counted(verb, "ok")
	c.record("command", inc, DuressPlaybook, false, map[string]any{"id": id, "verb": verb, "by": req.Staff,
		"playbook": DuressPlaybook, "origin": engine.OriginStaff, "via": "console", "duress": true, "for": req.Verb})
	c.log.Info("command", "id", id, "verb", verb, "incident", inc, "by", req.Staff, "via", "console")
}

// shown reports whether the incident is one the console shows.
func (c *Console) shown(id string) bool {
	for _, inc := range visible(c.cfg, c.eng.Incidents()) {
		if inc.ID == id {
			return true
		}
	}
	return false
}

// safeError is the engine's refusal as the page may see it: never naming a
// silent incident or playbook (a drill refused "while robbery is open").
func (c *Console) safeError(err error) string {
	msg := err.Error()
	for _, inc := range c.eng.Incidents() {
		if silent(c.cfg, inc.Playbook) && (strings.Contains(msg, inc.ID) || strings.Contains(msg, inc.Playbook)) {
			return "not allowed now"
		}
	}
	for _, pb := range c.cfg.Playbooks {
		if pb.Mode != "audible" && strings.Contains(msg, pb.ID) {
			return "not allowed now"
		}
	}
	return msg
}

// limiter locks PIN entry, for everyone (a wrong PIN names no one), after
// max failures within window, for window.
type limiter struct {
	mu       sync.Mutex
	max      int
	window   time.Duration
	failures []time.Time
	until    time.Time
}

func (l *limiter) locked(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return now.Before(l.until)
}

// fail counts a failure and reports whether it locked PIN entry.
func (l *limiter) fail(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	cut := now.Add(-l.window)
	i := 0
	for i < len(l.failures) && !l.failures[i].After(cut) {
		i++
	}
	l.failures = append(l.failures[i:], now)
	if len(l.failures) >= l.max {
		l.failures, l.until = nil, now.Add(l.window)
		return true
	}
	return false
}

// Mount adds the console to mux at /console/.
func Mount(mux *http.ServeMux, o Options) error {
	c, err := New(o)
	if err != nil {
		return err
	}
	h := c.Handler()
	mux.Handle("/console/", h)
	mux.Handle("/console", http.RedirectHandler("/console/", http.StatusFound))
	return nil
}
