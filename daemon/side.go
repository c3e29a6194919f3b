package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hallguard/hallguard/daemon/journal"
	"github.com/hallguard/hallguard/devices/clock"
	"github.com/hallguard/hallguard/outbox"
)

// Side records: drill and walk-test records (§1.3), reviews (§3.4) and CCTV
// bookmark requests go through the durable outbox like reports. Each is
// journalled (its own kind, with its data) in the same transaction that
// queues it, replayed after a restart, and retired on its PUBACK.

// sideState is the daemon's part of the side records: unique keys, and the
// CCTV bookmark requests that wait for the video system's answer.
type sideState struct {
	seq  uint64
	mu   sync.Mutex
	cctv map[string]*cctvWait // by request id
	// answered: requests the video system answered before their PUBACK
	// was processed; the PUBACK then clears the entry.
	answered map[string]bool
}

// cctvWait is one bookmark request, waiting for the video system to answer
// on cctv.reply_topic. timer is nil until the broker took the request.
type cctvWait struct {
	incident, step string
	timer          clock.Timer
}

// cctvData is a "cctv" journal record's data, and what the answer is matched
// with.
type cctvData struct {
	ID    string    `json:"id"`
	Topic string    `json:"topic"`
	Step  string    `json:"step"`
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
}

// record queues a side record: kind is its journal record's kind, key the
// thing it is about (a drill id, an incident id), payload what is published
// on rel, data the journal record's data. With the in-memory outbox (bench
// only) it is journalled through the recorder instead.
func (d *Daemon) record(kind, key, rel string, payload []byte, data any, incident, playbook string, drill bool) {
	b, err := json.Marshal(data)
	if err != nil {
		d.log.Error("record not encodable", "kind", kind, "err", err)
		return
	}
	d.side.mu.Lock()
	d.side.seq++
	n := d.side.seq
	d.side.mu.Unlock()
	// Unique per record sent: a drill record is sent again with each
	// evaluation; time keeps it unique across restarts.
	k := key + "@" + strconv.FormatInt(d.clk.Now().UnixNano(), 36) + "." + strconv.FormatUint(n, 10)
	if d.memOutbox {
		d.rec.add(kind, incident, playbook, drill, json.RawMessage(b))
	}
	d.pub.Record(outbox.SideRecord{Kind: kind, Key: k, Topic: rel, Payload: payload, Data: b,
		Incident: incident, Playbook: playbook, Drill: drill})
}

// newRequestID is a CCTV bookmark request's id, for the answer.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// onRecordAck is the publisher's OnRecordAck: a CCTV bookmark request the
// broker took now waits for the video system's answer (or, with no reply
// topic, is reported unconfirmed at once).
func (d *Daemon) onRecordAck(m outbox.Message, _ time.Time) {
	if m.Side == nil || m.Side.Kind != "cctv" {
		return
	}
	var c cctvData
	if json.Unmarshal(m.Side.Data, &c) != nil || c.ID == "" {
		return
	}
	d.cctvAcked(c.ID, m.Side.Incident, c.Step)
}

// cctvAcked starts the wait for the answer to bookmark request id, which
// the broker took.
func (d *Daemon) cctvAcked(id, incident, step string) {
	if d.cfg.CCTV.ReplyTopic == "" {
		d.loops.Go(func() {
			d.cctvNote(id, incident, step, "CCTV bookmark delivered to the video system, unconfirmed (no cctv.reply_topic): check the recordings are kept")
		})
		return
	}
	d.awaitCCTV(id, incident, step)
}

// expectCCTV notes a bookmark request before it is sent, so that an answer
// that arrives before the broker's PUBACK is processed (the broker forwards
// and acknowledges at once) still finds it. The confirm_within wait itself
// starts at the PUBACK (awaitCCTV).
func (d *Daemon) expectCCTV(id, incident, step string) {
	if d.cfg.CCTV.ReplyTopic == "" {
		return
	}
	d.side.mu.Lock()
	defer d.side.mu.Unlock()
	if d.side.cctv == nil {
		d.side.cctv = map[string]*cctvWait{}
	}
	if d.side.cctv[id] == nil {
		d.side.cctv[id] = &cctvWait{incident: incident, step: step}
	}
}

// awaitCCTV waits cctv.confirm_within for the video system's answer to
// request id; without one, the incident's report says the bookmark is not
// confirmed.
func (d *Daemon) awaitCCTV(id, incident, step string) {
	within := d.config().CCTV.ConfirmWithin.D() // the config in force (reload)
	d.side.mu.Lock()
	defer d.side.mu.Unlock()
	if d.side.cctv == nil {
		d.side.cctv = map[string]*cctvWait{}
	}
	if d.side.answered[id] {
		delete(d.side.answered, id) // answered before its PUBACK: nothing to wait for
		return
	}
	w := d.side.cctv[id] // noted when the request was made (expectCCTV)
	if w == nil {
		w = &cctvWait{incident: incident, step: step}
	} else if w.timer != nil {
		return // already waiting
	}
	w.timer = d.clk.AfterFunc(within, func() {
		d.side.mu.Lock()
		if d.side.cctv[id] != w {
			d.side.mu.Unlock()
			return
		}
		delete(d.side.cctv, id)
		d.side.mu.Unlock()
		d.log.Warn("CCTV bookmark not confirmed by the video system", "incident", w.incident, "request", id, "within_s", within.Seconds())
		d.cctvNote(id, w.incident, w.step, fmt.Sprintf("CCTV bookmark not confirmed by the video system within %s: keep the recordings by hand", within))
	})
	d.side.cctv[id] = w
}

// cctvAwaitedAtStart waits again for the answers to the bookmark requests
// of the last day that have no outcome in the journal: the broker took
// them before a restart, and their answer, or its absence, must still
// reach the incident's report. Requests still in the outbox are awaited
// from their PUBACK (onRecordAck) as well; each is awaited once.
func (d *Daemon) cctvAwaitedAtStart() {
	if d.cfg.CCTV.ReplyTopic == "" || d.cfg.CCTV.Topic == "" {
		return
	}
	since := d.clk.Now().Add(-24 * time.Hour)
	reqs, err := d.store.List(journal.Filter{Kind: "cctv", Since: since})
	if err != nil || len(reqs) == 0 {
		return
	}
	done := map[string]bool{}
	if outs, err := d.store.List(journal.Filter{Kind: "cctv_outcome", Since: since}); err == nil {
		for _, o := range outs {
			var x struct{ ID string }
			if json.Unmarshal(o.Data, &x) == nil {
				done[x.ID] = true
			}
		}
	}
	for _, rq := range reqs {
		var c cctvData
		if json.Unmarshal(rq.Data, &c) != nil || c.ID == "" || done[c.ID] {
			continue
		}
		d.awaitCCTV(c.ID, rq.Incident, c.Step)
	}
}

// cctvReply handles the video system's answer on cctv.reply_topic:
// {"id"} (or {"incident","step"}) of a request waiting, "ok" (default
// true), "detail". Anything else is ignored: answers prove nothing beyond
// the requests this daemon made.
func (d *Daemon) cctvReply(_ string, payload []byte) {
	var a struct {
		ID       string `json:"id"`
		Incident string `json:"incident"`
		Step     string `json:"step"`
		OK       *bool  `json:"ok"`
		Detail   string `json:"detail"`
	}
	if len(payload) > 4096 || json.Unmarshal(payload, &a) != nil {
		d.log.Warn("CCTV answer not understood: ignored", "bytes", len(payload))
		return
	}
	d.side.mu.Lock()
	id, w := a.ID, d.side.cctv[a.ID]
	if w == nil && a.Incident != "" {
		for k, x := range d.side.cctv {
			if x.incident == a.Incident && (a.Step == "" || a.Step == x.step) {
				id, w = k, x
				break
			}
		}
	}
	if w != nil {
		if w.timer != nil {
			w.timer.Stop()
		} else {
			// Answered before the PUBACK: that PUBACK must not start a wait.
			if d.side.answered == nil {
				d.side.answered = map[string]bool{}
			}
			d.side.answered[id] = true
		}
		delete(d.side.cctv, id)
	}
	d.side.mu.Unlock()
	if w == nil {
		d.log.Warn("CCTV answer to no waiting request: ignored", "id", a.ID, "incident", a.Incident)
		return
	}
	text := "CCTV bookmark confirmed by the video system"
	if a.OK != nil && !*a.OK {
		text = "CCTV bookmark refused by the video system: keep the recordings by hand"
		if a.Detail != "" {
			text += " (" + truncate(a.Detail, 200) + ")"
		}
	}
	d.cctvNote(id, w.incident, w.step, text)
}

// cctvNote puts what became of a bookmark request in the incident's
// reports (§3.3 5: measures taken, as they are), and in the journal (kind
// "cctv_outcome"), so that a restart does not wait for it again.
func (d *Daemon) cctvNote(id, incident, step, text string) {
	d.rec.add("cctv_outcome", incident, "", false, map[string]any{"id": id, "step": step, "outcome": text})
	if d.eng == nil || !d.eng.Note(incident, "", text+" (step "+step+")") {
		d.log.Info("CCTV bookmark outcome for an incident no longer held", "incident", incident, "outcome", text)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
