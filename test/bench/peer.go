package main

// make bench-nodered: the same trigger -> alert path in Node-RED (mqtt in,
// function, mqtt out, QoS 1, same broker) against hallguard's MQTT trigger
// path (a signed cmd/trigger for the manual playbook illness -> the report
// on alerts/illness, resolved before the next), in alternating rounds.
// Node-RED is installed by the make target into test/bench/.nodered
// (git-ignored); it runs with --userDir there and a settings file that
// turns the editor, the admin API and the HTTP server off.
//
// A second Node-RED instance runs the same flow with TCP_NODELAY forced on
// its sockets (a --require preload): mqtt.js opens its TCP connection
// without setNoDelay, so Node's default, Nagle, applies; the second
// instance shows how much of Node-RED's latency that is.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hallguard/hallguard/mqtt/command"
)

func (b *bench) nodeREDDir() string { return filepath.Join(b.root, "test", "bench", ".nodered") }

// nodeRED is one Node-RED instance with its own user dir, topics and
// client id.
type nodeRED struct {
	b        *bench
	name     string
	topic    string
	userDir  string
	settings string
	noDelay  bool
	p        *proc
	c        paho.Client
	alerts   *inbox
	n        int
}

// files writes settings.js, flows.json (and the TCP_NODELAY preload).
func (r *nodeRED) files(port int) error {
	r.settings = filepath.Join(r.userDir, "settings.js")
	js := `// Written by test/bench (make bench-nodered): no editor, no admin API,
// no HTTP server; the flow only.
module.exports = {
    flowFile: "flows.json",
    flowFilePretty: true,
    credentialSecret: false,
    uiHost: "127.0.0.1",
    uiPort: 0,
    httpAdminRoot: false,
    httpNodeRoot: false,
    diagnostics: { enabled: false, ui: false },
    runtimeState: { enabled: false, ui: false },
    telemetry: { enabled: false, updateNotification: false },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    logging: { console: { level: "info", metrics: false, audit: false } },
    functionExternalModules: false,
    exportGlobalContextKeys: false,
};
`
	fn := `const t = msg.payload || {};
const now = new Date().toISOString();
msg.topic = "` + r.topic + `/alerts/" + (t.playbook || "illness");
msg.payload = {
  id: t.id, incident: t.id, seq: 0, version: 1, event: "raised",
  playbook: t.playbook || "illness", state: "active", origin: "center", source: t.by || "",
  hall: {id: "bench-nodered", name: "Bench hall", location: "1 Bench Road"},
  occurred_at: now, type: "customer taken suddenly ill", impact: "unknown",
  measures: [], control: "unknown", trend: "unknown", other: "unknown",
  steps: [], presses: 0, inputs: [], redelivered: false, sent_at: now
};
return msg;`
	flows := []map[string]any{
		{"id": "bench-broker", "type": "mqtt-broker", "name": "bench", "broker": "127.0.0.1", "port": fmt.Sprint(port),
			"clientid": fmt.Sprintf("%s-%d", r.name, os.Getpid()), "autoConnect": true, "usetls": false, "protocolVersion": "4",
			"keepalive": "60", "cleansession": true, "autoUnsubscribe": true,
			"birthTopic": "", "closeTopic": "", "willTopic": ""},
		{"id": "bench-tab", "type": "tab", "label": "bench", "disabled": false},
		{"id": "bench-in", "type": "mqtt in", "z": "bench-tab", "name": "trigger", "topic": r.topic + "/cmd/trigger", "qos": "1",
			"datatype": "json", "broker": "bench-broker", "nl": false, "rap": false, "inputs": 0, "x": 100, "y": 100, "wires": [][]string{{"bench-fn"}}},
		{"id": "bench-fn", "type": "function", "z": "bench-tab", "name": "alert", "func": fn, "outputs": 1, "timeout": 0,
			"noerr": 0, "initialize": "", "finalize": "", "libs": []any{}, "x": 300, "y": 100, "wires": [][]string{{"bench-out"}}},
		{"id": "bench-out", "type": "mqtt out", "z": "bench-tab", "name": "alert", "topic": "", "qos": "1", "retain": "false",
			"respTopic": "", "contentType": "", "userProps": "", "correl": "", "expiry": "", "broker": "bench-broker", "x": 500, "y": 100, "wires": []any{}},
	}
	fb, err := json.MarshalIndent(flows, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFile(r.settings, js); err != nil {
		return err
	}
	if r.noDelay {
		pre := `// TCP_NODELAY on every socket Node opens (mqtt.js does not set it).
const net = require("net");
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  this.once("connect", () => this.setNoDelay(true));
  return connect.apply(this, args);
};
`
		if err := writeFile(filepath.Join(r.userDir, "nodelay.js"), pre); err != nil {
			return err
		}
	}
	return writeFile(filepath.Join(r.userDir, "flows.json"), string(fb))
}

// start starts node on red.js (so the PID is Node-RED's own) and returns
// the start time.
func (r *nodeRED) start() (time.Time, error) {
	red := filepath.Join(r.b.nodeREDDir(), "node_modules", "node-red", "red.js")
	if _, err := os.Stat(red); err != nil {
		return time.Time{}, fmt.Errorf("Node-RED is not installed in %s (make bench-nodered installs it): %w", r.b.nodeREDDir(), err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return time.Time{}, err
	}
	var env []string
	if r.noDelay {
		env = append(env, "NODE_OPTIONS=--require="+filepath.Join(r.userDir, "nodelay.js"))
	}
	log := filepath.Join(r.b.dir, fmt.Sprintf("%s-%d.log", r.name, time.Now().UnixNano()%1e9))
	if r.p, err = startProc(r.name, log, env, node, red, "--userDir", r.userDir, "--settings", r.settings); err != nil {
		return time.Time{}, err
	}
	return r.p.started, nil
}

func (r *nodeRED) send(id string) error {
	pl, _ := json.Marshal(map[string]string{"id": id, "playbook": "illness", "by": "bench-center"})
	return publish(r.c, r.topic+"/cmd/trigger", pl)
}

// firstAlert triggers every 10 ms from the start until an alert comes.
func (r *nodeRED) firstAlert(t0 time.Time) (time.Duration, error) {
	l, _, err := firstAlert(t0, r.alerts, func() error {
		r.n++
		return r.send(fmt.Sprintf("%s-start-%d", r.name, r.n))
	}, r.p, func(m msg) bool { _, ok := parseReport(m); return ok })
	return l, err
}

// trigger sends one trigger and returns publish -> receipt of its alert.
func (r *nodeRED) trigger() (time.Duration, error) {
	r.n++
	id := fmt.Sprintf("%s-%d-%d", r.name, time.Now().UnixNano(), r.n)
	t0 := time.Now()
	if err := r.send(id); err != nil {
		return 0, err
	}
	m, err := r.alerts.take(10*time.Second, func(m msg) bool { rr, ok := parseReport(m); return ok && rr.ID == id })
	if err != nil {
		return 0, fmt.Errorf("%s alert: %w", r.name, err)
	}
	return m.At.Sub(t0), nil
}

// firstAlert publishes a trigger (send) every 10 ms until an alert
// matching match comes back, and returns t0 -> that receipt.
func firstAlert(t0 time.Time, in *inbox, send func() error, p *proc, match func(msg) bool) (time.Duration, msg, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := send(); err != nil {
			return 0, msg{}, err
		}
		if m, err := in.take(10*time.Millisecond, match); err == nil {
			return m.At.Sub(t0), m, nil
		}
		if p.exited() {
			return 0, msg{}, fmt.Errorf("%s exited: %s", p.name, p.logTail(20))
		}
		if time.Now().After(deadline) {
			return 0, msg{}, fmt.Errorf("%s: no alert within 30 s of its start\n%s", p.name, p.logTail(20))
		}
	}
}

func isRaised(m msg) bool { r, ok := parseReport(m); return ok && r.Event == "raised" }

// hallguardFirstAlert starts the daemon and sends a signed trigger every
// 10 ms from its start until the illness report comes; then it resolves
// the incident (open incidents are restored from the journal at the next
// start, and an open illness refuses the next trigger) and stops it.
func (b *bench) hallguardFirstAlert(c paho.Client, alerts *inbox, cfg, hall, state string, i int) (time.Duration, error) {
	alerts.Reset()
	d, wait, err := launchDaemon(b.bin, b.dir, cfg, hall, state)
	if err != nil {
		return 0, err
	}
	defer d.stop()
	n := 0
	l, m, err := firstAlert(d.p.started, alerts, func() error {
		n++
		return sendCommand(c, b.key, hall, "trigger", command.Message{ID: fmt.Sprintf("bench-start-%d-%d-%d", time.Now().UnixNano(), i, n), Playbook: "illness", By: "bench-center"})
	}, d.p, isRaised)
	if err != nil {
		return 0, err
	}
	if err := wait(); err != nil {
		return 0, err
	}
	r, _ := parseReport(m)
	time.Sleep(50 * time.Millisecond) // the triggers still in flight are refused
	if err := sendCommand(c, b.key, hall, "resolve", command.Message{ID: fmt.Sprintf("bench-start-res-%d-%d", time.Now().UnixNano(), i), Incident: r.Incident, By: "bench-center"}); err != nil {
		return 0, err
	}
	if err := waitResolved(alerts, r.Incident); err != nil {
		return 0, fmt.Errorf("hallguard: resolving the start's illness: %w", err)
	}
	return l, d.stop()
}

func (b *bench) runPeer() error {
	var err error
	b.mq, _, err = newMosquitto(b.root, b.dir, "mosquitto")
	if err != nil {
		return err
	}
	nrVer, nodeVer := b.peerVersions()
	c, err := connect(b.mq.url(), "peer-center", nil)
	if err != nil {
		return err
	}
	defer c.Disconnect(100)
	nrs, err := b.nodeREDs(c)
	if err != nil {
		return err
	}
	hall := "bench-peer"
	state := filepath.Join(b.dir, "state-"+hall)
	cfg, err := benchConfig(b.root, b.dir, hall, b.mq.url(), state, "", nil)
	if err != nil {
		return err
	}
	hgAlerts, err := subscribe(c, "hallguard/"+hall+"/alerts/illness")
	if err != nil {
		return err
	}
	hg := peerHall{c: c, alerts: hgAlerts, cfg: cfg, hall: hall, state: state}
	var f peerFigures
	step("peer: %d starts each, alternating hallguard and Node-RED %s", min(b.starts, 5), nrVer)
	if f.hgStart, f.nrStart, err = b.peerStarts(hg, nrs[0]); err != nil {
		return err
	}
	if err := b.peerAllRunning(hg, nrs, &f); err != nil {
		return err
	}
	b.reportPeer(f, nrVer, nodeVer)
	return nil
}

// peerVersions are Node-RED's version ("?" when unknown) and node's.
func (b *bench) peerVersions() (nrVer, nodeVer string) {
	nrVer = "?"
	if pj, err := os.ReadFile(filepath.Join(b.nodeREDDir(), "node_modules", "node-red", "package.json")); err == nil {
		var v struct{ Version string }
		_ = json.Unmarshal(pj, &v)
		nrVer = v.Version
	}
	out, _ := exec.Command("node", "--version").Output()
	nodeVer = strings.TrimSpace(string(out))
	b.res.Versions["node-red"], b.res.Versions["node"] = nrVer, nodeVer
	return nrVer, nodeVer
}

// nodeREDs writes the files of the two Node-RED peers (plain, and with
// TCP_NODELAY forced) and subscribes c to their alerts.
func (b *bench) nodeREDs(c paho.Client) ([]*nodeRED, error) {
	var nrs []*nodeRED
	for _, nd := range []bool{false, true} {
		name := "nodered-bench"
		if nd {
			name = "nodered-bench-nodelay"
		}
		r := &nodeRED{b: b, name: name, topic: "nodered/" + name, userDir: filepath.Join(b.nodeREDDir(), name), noDelay: nd, c: c}
		if err := r.files(b.mq.port); err != nil {
			return nil, err
		}
		var err error
		if r.alerts, err = subscribe(c, r.topic+"/alerts/+"); err != nil {
			return nil, err
		}
		nrs = append(nrs, r)
	}
	return nrs, nil
}

// peerHall is the hallguard side of the comparison: its config, and the
// center's client with its subscription to the hall's alerts.
type peerHall struct {
	c                paho.Client
	alerts           *inbox
	cfg, hall, state string
}

// peerFigures are what the peer comparison measured.
type peerFigures struct {
	hgStart, nrStart    dist
	hgLat, nrLat, ndLat dist
	hgRSS, nrRSS        float64 // idle, 10 s after ready
	hgRSS2, nrRSS2      float64 // after the trigger rounds
	hgCPU, nrCPU        cpuSample
	rounds              int
}

// peerStarts measures start -> first alert possible, alternating hallguard
// and Node-RED; the first start of each creates its files and is not
// counted.
func (b *bench) peerStarts(hg peerHall, nr *nodeRED) (hgStart, nrStart dist, err error) {
	starts := min(b.starts, 5)
	for i := -1; i < starts; i++ { // i = -1: creates the journal and Node-RED's files, not counted
		l, err := b.hallguardFirstAlert(hg.c, hg.alerts, hg.cfg, hg.hall, hg.state, i)
		if err != nil {
			return nil, nil, err
		}
		nr.alerts.Reset()
		t0, err := nr.start()
		if err != nil {
			return nil, nil, err
		}
		ln, err := nr.firstAlert(t0)
		if err != nil {
			return nil, nil, err
		}
		if err := nr.p.stop(10 * time.Second); err != nil {
			return nil, nil, err
		}
		if i >= 0 {
			hgStart, nrStart = append(hgStart, l), append(nrStart, ln)
		}
	}
	return hgStart, nrStart, nil
}

// peerAllRunning runs hallguard and both Node-REDs at once: idle RSS 10 s
// after ready, then the alternating trigger rounds.
func (b *bench) peerAllRunning(hg peerHall, nrs []*nodeRED, f *peerFigures) error {
	d, err := startDaemon(b.bin, b.dir, hg.cfg, hg.hall, hg.state, true)
	if err != nil {
		return err
	}
	defer d.stop()
	for _, r := range nrs {
		r.alerts.Reset()
		t0, err := r.start()
		if err != nil {
			return err
		}
		defer r.p.stop(10 * time.Second)
		if _, err := r.firstAlert(t0); err != nil {
			return err
		}
	}
	nr := nrs[0]
	step("peer: all idle for 10 s (RSS)")
	time.Sleep(10 * time.Second)
	f.hgRSS, _ = rssMiB(d.p.pid())
	f.nrRSS, _ = rssMiB(nr.p.pid())
	hg.alerts.Reset()
	tg, err := newTriggerer(d, hg.c, b.key)
	if err != nil {
		return err
	}
	for _, r := range nrs {
		r.alerts.Reset()
	}
	f.rounds = min(b.rounds, 200)
	step("peer: %d trigger rounds, alternating hallguard, Node-RED, Node-RED with TCP_NODELAY", f.rounds)
	if err := peerRounds(d, tg, nrs, f); err != nil {
		return err
	}
	f.hgRSS2, _ = rssMiB(d.p.pid())
	f.nrRSS2, _ = rssMiB(nr.p.pid())
	return nil
}

// peerRounds runs 10 warm-up and f.rounds counted trigger rounds of
// hallguard, Node-RED and Node-RED with TCP_NODELAY, in rotating order,
// and the CPU hallguard and Node-RED spent on the counted ones.
func peerRounds(d *daemon, tg *triggerer, nrs []*nodeRED, f *peerFigures) error {
	nr, nrND := nrs[0], nrs[1]
	hgCPU0, nrCPU0 := sampleCPU(d.p.pid()), sampleCPU(nr.p.pid())
	for i := range f.rounds + 10 {
		if i == 10 { // warm-up done
			f.hgLat, f.nrLat, f.ndLat = nil, nil, nil
			hgCPU0, nrCPU0 = sampleCPU(d.p.pid()), sampleCPU(nr.p.pid())
		}
		for w := range 3 {
			var l time.Duration
			var err error
			switch (w + i) % 3 {
			case 0:
				if l, err = tg.trigger(); err == nil {
					f.hgLat = append(f.hgLat, l)
				}
			case 1:
				if l, err = nr.trigger(); err == nil {
					f.nrLat = append(f.nrLat, l)
				}
			case 2:
				if l, err = nrND.trigger(); err == nil {
					f.ndLat = append(f.ndLat, l)
				}
			}
			if err != nil {
				return err
			}
		}
	}
	f.hgCPU, f.nrCPU = sampleCPU(d.p.pid()).sub(hgCPU0), sampleCPU(nr.p.pid()).sub(nrCPU0)
	return nil
}

// reportPeer adds the peer comparison's rows and notes.
func (b *bench) reportPeer(f peerFigures, nrVer, nodeVer string) {
	sec := "peer"
	lat := func(name string, a, base dist, baseName string) {
		b.res.add(row{Section: sec, Name: name, Value: "hallguard " + a.String(),
			Baseline: baseName + " " + base.String(), Ratio: fmt.Sprintf("p50 %.2f× p99 %.2f×", msf(a.p50())/msf(base.p50()), msf(a.p99())/msf(base.p99())),
			Data: map[string]any{"hallguard": a.data(), "peer": base.data()}})
	}
	lat("MQTT trigger -> alert at subscriber", f.hgLat, f.nrLat, "Node-RED")
	lat("  same, Node-RED with TCP_NODELAY forced (preload)", f.hgLat, f.ndLat, "Node-RED+nodelay")
	b.res.add(row{Section: sec, Name: "start -> first alert possible (trigger every 10 ms)", Value: "hallguard " + f.hgStart.String(),
		Baseline: "Node-RED " + f.nrStart.String(), Ratio: fmt.Sprintf("p50 %.3f×", msf(f.hgStart.p50())/msf(f.nrStart.p50())),
		Target: "hallguard ≤50 ms (Node-RED ~0.9 s)", Met: met(msf(f.hgStart.p50()) <= 50),
		Data: map[string]any{"hallguard": f.hgStart.data(), "nodered": f.nrStart.data()}})
	b.res.add(row{Section: sec, Name: "RSS idle, 10 s after first alert possible", Value: fmt.Sprintf("hallguard %.1f MiB", f.hgRSS),
		Baseline: fmt.Sprintf("Node-RED %.1f MiB", f.nrRSS), Ratio: ratio(f.hgRSS, f.nrRSS),
		Target: "hallguard ≤15 MiB (Node-RED ~94 MiB)", Met: met(f.hgRSS <= 15),
		Data: map[string]any{"hallguard_mib": f.hgRSS, "nodered_mib": f.nrRSS}})
	b.res.add(row{Section: sec, Name: fmt.Sprintf("RSS after %d trigger rounds", f.rounds+10), Value: fmt.Sprintf("hallguard %.1f MiB", f.hgRSS2),
		Baseline: fmt.Sprintf("Node-RED %.1f MiB", f.nrRSS2), Ratio: ratio(f.hgRSS2, f.nrRSS2),
		Data: map[string]any{"hallguard_mib": f.hgRSS2, "nodered_mib": f.nrRSS2}})
	perHG, perNR := f.hgCPU.nanos/float64(f.rounds)*1000*1000, f.nrCPU.nanos/float64(f.rounds)*1000*1000
	b.res.add(row{Section: sec, Name: "CPU per 1000 triggers (hallguard: trigger + resolve)", Value: fmt.Sprintf("hallguard %.0f ms", perHG),
		Baseline: fmt.Sprintf("Node-RED %.0f ms", perNR), Ratio: ratio(perHG, perNR),
		Data: map[string]any{"hallguard_ms": perHG, "nodered_ms": perNR}})
	b.res.note("peer: Node-RED %s on node %s, flow mqtt in -> function -> mqtt out (QoS 1) on the same mosquitto; editor, admin API and HTTP server off", nrVer, nodeVer)
	b.res.note("peer: hallguard's path verifies the HMAC, raises the incident, journals the report (fdatasync) and publishes it twice (alerts/, incidents/), and each round also resolves it; Node-RED's function only builds a JSON object")
}
