package mqtt

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Watch connects to brokerURL with a client id of its own, subscribes to
// <topicRoot>/# ("#" when topicRoot is empty) and prints every message to w,
// readably: a block per report, one line for everything else. It reconnects
// by itself and returns nil when ctx ends, or an error when the first
// connection or subscription fails.
func Watch(ctx context.Context, brokerURL, topicRoot string, w io.Writer) error {
	return watch(ctx, brokerURL, topicRoot, w, formatter{loc: time.Local, now: time.Now})
}

func watch(ctx context.Context, brokerURL, topicRoot string, w io.Writer, f formatter) error {
	f.root = strings.TrimSuffix(topicRoot, "/")
	filter := "#"
	if f.root != "" {
		filter = f.root + "/#"
	}
	var mu sync.Mutex
	show := func(_ paho.Client, m paho.Message) {
		s := f.format(m.Topic(), m.Payload(), m.Retained())
		mu.Lock()
		defer mu.Unlock()
		_, _ = io.WriteString(w, s)
	}
	subscribed := make(chan error, 1)
	o := paho.NewClientOptions().AddBroker(brokerURL).SetClientID(watchID()).
		SetProtocolVersion(4).SetCleanSession(true).SetOrderMatters(true).
		SetAutoReconnect(true).SetConnectTimeout(10 * time.Second).SetMaxReconnectInterval(10 * time.Second).
		SetOnConnectHandler(func(c paho.Client) { // every connection: a clean session forgets subscriptions
			err := wait(c.Subscribe(filter, 1, show), 10*time.Second)
			select {
			case subscribed <- err:
			default:
			}
		})
	c := paho.NewClient(o)
	if err := wait(c.Connect(), 15*time.Second); err != nil {
		return fmt.Errorf("mqtt: watch: connect to %s: %w", redacted(brokerURL), err)
	}
	defer c.Disconnect(250)
	select {
	case err := <-subscribed:
		if err != nil {
			return fmt.Errorf("mqtt: watch: subscribe %s: %w", filter, err)
		}
	case <-ctx.Done():
		return nil
	}
	<-ctx.Done()
	return nil
}

func watchID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "hallguard-watch-" + hex.EncodeToString(b)
}

// formatter turns messages into text. now stamps lines whose payload has no
// time of its own.
type formatter struct {
	root string
	loc  *time.Location
	now  func() time.Time
}

func (f formatter) clock(t *time.Time) string {
	if t == nil {
		return "--:--:--.---"
	}
	return t.In(f.loc).Format("15:04:05.000")
}

func (f formatter) format(topic string, payload []byte, retained bool) string {
	rel := topic
	if f.root != "" {
		rel = strings.TrimPrefix(topic, f.root+"/")
	}
	now := f.now()
	at := f.clock(&now)
	kind := classify(rel)
	var summary string
	switch kind {
	case kindAlert:
		var r ReportPayload
		if err := json.Unmarshal(payload, &r); err == nil {
			return f.report(r, retained)
		}
	case kindStatus:
		summary = string(payload)
	case kindInput:
		var in InputPayload
		if err := json.Unmarshal(payload, &in); err == nil {
			summary = f.input(in)
		}
	case kindQueue:
		var q QueuePayload
		if err := json.Unmarshal(payload, &q); err == nil {
			summary = fmt.Sprintf("%d waiting, %s arrivals/min, %d in, %d out", q.Length, strconv.FormatFloat(q.Rate, 'f', -1, 64), q.Arrivals, q.Departures)
			if q.Surge {
				summary += ", SURGE"
			}
		}
	case kindIncident:
		var r ReportPayload
		if err := json.Unmarshal(payload, &r); err == nil {
			summary = fmt.Sprintf("v%d %s %s", r.Version, r.Playbook, r.State)
			if r.Drill {
				summary += " DRILL"
			}
		}
	case kindConditions:
		var cs []ConditionPayload
		if err := json.Unmarshal(payload, &cs); err == nil {
			if len(cs) == 0 {
				summary = "none active"
			} else {
				parts := make([]string, len(cs))
				for i, c := range cs {
					parts[i] = condition(c)
				}
				summary = fmt.Sprintf("%d active: %s", len(cs), strings.Join(parts, "; "))
			}
		}
	case kindConditionEvent:
		var c ConditionPayload
		if err := json.Unmarshal(payload, &c); err == nil {
			verb := "cleared"
			if c.Active {
				verb = "raised"
			}
			summary = verb + " " + condition(c)
		}
	}
	if summary == "" {
		summary = raw(payload)
	}
	line := at + "  " + rel + ": " + summary
	if retained {
		line += "  (retained)"
	}
	return line + "\n"
}

// report formats a report as a block, e.g.
//
//	07:45:12.123  ROBBERY (§4.3(a)) armed  raised  v1  incident 20260301-a3f9c1
//	  hall: 营业厅 (Main St. 1)
//	  origin: button panic-teller-1  state: active  silent
//	  impact: unknown | control: unknown | trend: unknown
//	  measures: police-link on (§4.3(a)2)
//	  [ ] §4.3(a)1 Staff who see an armed robbery stay calm ...
func (f formatter) report(r ReportPayload, retained bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %s  %s  v%d  incident %s", f.clock(r.SentAt), reportHead(r), r.Event, r.Version, r.Incident)
	if r.Redelivered {
		b.WriteString("  (redelivered)")
	}
	if retained {
		b.WriteString("  (retained)")
	}
	b.WriteString("\n")

	hall := cmp.Or(r.Hall.Name, r.Hall.ID)
	if r.Hall.Location != "" {
		hall += " (" + r.Hall.Location + ")"
	}
	fmt.Fprintf(&b, "  hall: %s\n", hall)

	fmt.Fprintf(&b, "  origin: %s %s  state: %s", r.Origin, r.Source, r.State)
	if r.Silent {
		b.WriteString("  silent")
	}
	if r.Presses > 1 {
		fmt.Fprintf(&b, "  presses: %d", r.Presses)
	}
	b.WriteString("\n")

	fmt.Fprintf(&b, "  impact: %s | control: %s | trend: %s", r.Impact, r.Control, r.Trend)
	if r.Other != "" && r.Other != "unknown" {
		fmt.Fprintf(&b, " | other: %s", r.Other)
	}
	b.WriteString("\n")
	f.reportActions(&b, r)
	return b.String()
}

// reportHead is a report's title: its type (else playbook), marked as a
// drill or test, with its section and variant.
func reportHead(r ReportPayload) string {
	head := strings.ToUpper(r.Type)
	if r.Type == "" || r.Type == "unknown" {
		head = strings.ToUpper(r.Playbook)
	}
	if r.Drill {
		head = "DRILL " + head
	}
	if r.Test {
		head = "TEST " + head // a hold-up press during a walk test
	}
	if r.Section != "" {
		head += " (" + r.Section + ")"
	}
	if r.Variant != "" {
		head += " " + r.Variant
	}
	return head
}

// reportActions writes a report's measures, escalation and steps.
func (f formatter) reportActions(b *strings.Builder, r ReportPayload) {
	measures := make([]string, len(r.Measures))
	for i, m := range r.Measures {
		measures[i] = m.Text
		if m.Section != "" {
			measures[i] += " (" + m.Section + ")"
		}
	}
	fmt.Fprintf(b, "  measures: %s\n", cmp.Or(strings.Join(measures, "; "), "none"))

	if e := r.Escalation; e != nil {
		who := e.Role
		if e.Name != "" {
			who += " " + e.Name
		}
		if e.Contact != "" {
			who += " (" + e.Contact + ")"
		}
		fmt.Fprintf(b, "  escalation: level %d to %s after %ss\n", e.Level, who, strconv.FormatFloat(e.AfterSeconds, 'f', -1, 64))
	}

	for _, s := range r.Steps {
		mark := "[ ]"
		if s.Done {
			mark = "[x]"
		}
		fmt.Fprintf(b, "  %s %s %s", mark, s.Section, cmp.Or(s.EN, s.ZH))
		if s.Done {
			fmt.Fprintf(b, "  (%s %s)", s.By, f.clock(s.At))
		}
		b.WriteString("\n")
	}
}

func (f formatter) input(in InputPayload) string {
	state := "idle"
	if in.Active {
		state = "ACTIVE"
	}
	s := fmt.Sprintf("%s (%s since %s, %d edges", state, in.State, f.clock(in.Since), in.Edges)
	if in.LostEdges > 0 {
		s += fmt.Sprintf(", %d lost", in.LostEdges)
	}
	if len(in.Faults) > 0 {
		s += ", faults " + strings.Join(in.Faults, ",")
	}
	return s + ")"
}

func condition(c ConditionPayload) string {
	s := c.Class.String() + " " + c.Kind
	if c.Input != "" {
		s += " " + c.Input
	}
	if c.Detail != "" {
		s += " (" + c.Detail + ")"
	}
	return s
}

func raw(p []byte) string {
	const max = 200
	s := strings.ToValidUTF8(string(p), "?")
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strings.ReplaceAll(s, "\n", " ")
}

type topicKind int

const (
	kindOther topicKind = iota
	kindStatus
	kindInput
	kindQueue
	kindIncident
	kindAlert // alerts/<playbook> and drills/alerts/<playbook>
	kindConditions
	kindConditionEvent
	kindCommand
)

// classify tells what a topic is from its last levels, whatever the prefix
// and hall before them; two-level patterns first, so that an input named
// "status" is still an input.
func classify(rel string) topicKind {
	p := strings.Split(rel, "/")
	n := len(p)
	at := func(i int) string { // i levels from the end, 1 = last
		if i > n {
			return ""
		}
		return p[n-i]
	}
	switch {
	case at(2) == "alerts": // also drills/alerts/<playbook>
		return kindAlert
	case at(2) == "inputs":
		return kindInput
	case at(2) == "incidents":
		return kindIncident
	case at(2) == "events" && at(1) == "condition":
		return kindConditionEvent
	case at(2) == "cmd":
		return kindCommand
	case at(1) == "status":
		return kindStatus
	case at(1) == "queue":
		return kindQueue
	case at(1) == "conditions":
		return kindConditions
	}
	return kindOther
}
