package arc

import (
	"fmt"
	"strings"
	"time"

	"github.com/hallguard/hallguard/daemon/engine"
)

// Contact ID qualifiers.
const (
	QualNew     = 1 // new event or opening
	QualRestore = 3 // restore or closing
)

// Contact ID event codes hallguard sends (SIA DC-05). The README's
// "Alarm receiving centre" section has the same table.
const (
	CIDFire              = 110 // fire, source not a detector (staff, center)
	CIDSmoke             = 111 // fire from a smoke detector (§4.4)
	CIDCallpoint         = 115 // fire from a manual call point (§4.4)
	CIDPanic             = 120
	CIDDuress            = 121 // duress PIN at the console (§4.3)
	CIDSilentHoldUp      = 122 // robbery (§4.3): silent, whatever the variant
	CIDFireSupervisory   = 200 // smoke pre-alarm, not yet verified
	CIDTamper            = 137 // tamper input (box lid)
	CIDSensorTamper      = 144 // NC loop opened
	CIDSystemTrouble     = 300 // journal degraded
	CIDACLoss            = 301
	CIDRelayTrouble      = 320 // output failed
	CIDPeripheral        = 330 // GPIO line lost
	CIDCommTrouble       = 350 // a reporting path failed
	CIDFailToCommunicate = 354 // an event could not be delivered
	CIDSensorTrouble     = 380 // stuck input, lost edges
	CIDManualTest        = 601 // `hallguard arc test`, drills (§1.3)
	CIDPeriodicTest      = 602
	CIDWalkTest          = 607
)

// Condition kinds the daemon raises about the paths themselves.
const (
	KindMQTTPathFailed = "mqtt_path_failed"   // the MQTT path is down past its budget
	KindARCPathFailed  = "arc_path_failed"    // one DC-09 receiver path failed; the kind is arc_path_failed:<receiver>
	KindARCUndelivered = "arc_undelivered"    // no receiver took an event
	KindARCQueue       = "arc_queue_degraded" // arc.db cannot store events
)

// Policies for playbooks without a Contact ID.
const (
	// UnmappedSkip (the default) sends them on MQTT only: an ARC operator
	// acts on codes, and a code the ARC does not know is either dropped
	// or, worse, handled as a generic alarm with a police dispatch. The
	// center gets these plans' full §3.3 reports on MQTT.
	UnmappedSkip = "skip"
	// UnmappedSIAText sends them as SIA DC-03 untyped events (UA/UR) whose
	// ASCII block names the playbook and the event.
	UnmappedSIAText = "sia_text"
)

// Input is a configured input; its zone is its position in the list + 1.
type Input struct {
	ID   string
	Kind string // panic, smoke, callpoint, ...
}

// Mapping turns the engine's reports and conditions into ARC events.
type Mapping struct {
	Inputs []Input
	// Codes overrides or adds a Contact ID per playbook ("besieged") or
	// per playbook and variant ("robbery/gas").
	Codes map[string]int
	// Unmapped is UnmappedSkip ("" too) or UnmappedSIAText.
	Unmapped string
}

// Event is one event for the ARC: what a frame's data carries.
type Event struct {
	// Key is the queue's id, set by Queue.Push.
	Key uint64 `json:"key"`
	// ID is stable across restarts: the report id, or the condition's
	// kind, input and time.
	ID        string    `json:"id"`
	Format    string    `json:"format"` // IDContactID or IDSIA
	Qualifier int       `json:"qualifier"`
	Code      int       `json:"code"`
	Area      int       `json:"area"`
	Zone      int       `json:"zone"`
	Text      string    `json:"text,omitempty"`
	Created   time.Time `json:"created"`
	// Trigger is the input edge behind it, for the press-to-ACK latency.
	Trigger time.Time `json:"trigger,omitzero"`
	// Report is the engine report's seq it was made from (0 for a
	// condition or a test): the lane's mark of what it has taken.
	Report uint64 `json:"report,omitempty"`
}

// Alarm says whether the event is a new alarm (Contact ID 1xx: fire,
// panic, hold-up, duress), which must reach the ARC without delay.
func (e Event) Alarm() bool {
	return e.Format == IDContactID && e.Qualifier == QualNew && e.Code >= 100 && e.Code < 200
}

// Data renders the event as a DC-09 data block for account.
func (e Event) Data(account string) string {
	if e.Format == IDSIA {
		code := "UA"
		if e.Qualifier == QualRestore {
			code = "UR"
		}
		return fmt.Sprintf("#%s|Nri%d/%s%03d|A%s", account, e.Area, code, e.Zone, e.Text)
	}
	return fmt.Sprintf("#%s|%d%03d %02d %03d", account, e.Qualifier, e.Code, e.Area, e.Zone)
}

// String is the event for logs and `arc listen`.
func (e Event) String() string {
	q := "new"
	if e.Qualifier == QualRestore {
		q = "restore"
	}
	if e.Format == IDSIA {
		return fmt.Sprintf("%s %s zone %03d %q", e.Format, q, e.Zone, e.Text)
	}
	return fmt.Sprintf("CID %s %03d %s area %02d zone %03d", q, e.Code, CIDName(e.Code), e.Area, e.Zone)
}

// Test is a manual (601) or periodic (602) test event.
func Test(code int, at time.Time) Event {
	return Event{ID: fmt.Sprintf("test-%d-%d", code, at.UnixNano()), Format: IDContactID, Qualifier: QualNew, Code: code, Area: 1, Created: at}
}

func (m *Mapping) zone(id string) (int, string) {
	for i, in := range m.Inputs {
		if in.ID == id {
			return i + 1, in.Kind
		}
	}
	return 0, ""
}

// Report maps an incident report; false when it is not sent to the ARC.
// Only a playbook's opening (raised) and closing (resolved, false alarm)
// are: the rest of its course goes to the center on MQTT.
func (m *Mapping) Report(r engine.Report) (Event, bool) {
	q := 0
	switch r.Event {
	case engine.EventRaised:
		q = QualNew
	case engine.EventResolved, engine.EventFalseAlarm:
		q = QualRestore
	default:
		return Event{}, false
	}
	zone, kind := m.zone(r.Source)
	ev := Event{ID: r.ID, Format: IDContactID, Qualifier: q, Area: 1, Zone: zone, Created: r.Created, Trigger: r.Trigger, Report: r.Seq}
	if r.Drill {
		// §1.3: a drill is a test at the ARC, never a hold-up or a fire.
		ev.Code = CIDManualTest
		return ev, true
	}
	code, ok := m.Codes[r.Playbook+"/"+r.Variant]
	if !ok {
		code, ok = m.Codes[r.Playbook]
	}
	if !ok {
		switch r.Playbook {
		case "robbery":
			code, ok = CIDSilentHoldUp, true // §4.3: silent in the hall, loud at the center
		case "duress":
			code, ok = CIDDuress, true
		case "fire":
			ok = true
			switch kind {
			case "smoke":
				code = CIDSmoke
			case "callpoint":
				code = CIDCallpoint
			default:
				code = CIDFire
			}
		}
	}
	if ok {
		ev.Code = code
		return ev, true
	}
	if m.Unmapped != UnmappedSIAText {
		return Event{}, false
	}
	ev.Format = IDSIA
	ev.Text = r.Playbook + " " + r.Event.String()
	if r.Event == engine.EventFalseAlarm {
		ev.Text = r.Playbook + " false alarm"
	}
	return ev, true
}

// conditionCodes maps a condition kind to its Contact ID.
var conditionCodes = map[string]int{
	"pre_alarm":         CIDFireSupervisory,
	"tamper":            CIDTamper,
	"loop_open":         CIDSensorTamper,
	"stuck":             CIDSensorTrouble,
	"lost_edges":        CIDSensorTrouble,
	"line_lost":         CIDPeripheral,
	"ac_loss":           CIDACLoss,
	"output_failed":     CIDRelayTrouble,
	"journal_degraded":  CIDSystemTrouble,
	"journal_recovered": CIDSystemTrouble,
	KindMQTTPathFailed:  CIDCommTrouble,
	KindARCPathFailed:   CIDCommTrouble,
	KindARCUndelivered:  CIDFailToCommunicate,
	KindARCQueue:        CIDSystemTrouble,
	"walk_test":         CIDWalkTest,
}

// Condition maps a trouble, tamper or supervisory condition; false when
// it is not sent to the ARC.
func (m *Mapping) Condition(c engine.Condition) (Event, bool) {
	kind, _, _ := strings.Cut(c.Kind, ":") // arc_path_failed:<receiver>
	code, ok := conditionCodes[kind]
	if !ok {
		return Event{}, false
	}
	zone, _ := m.zone(c.Input)
	q := QualNew
	if !c.Active {
		q = QualRestore
	}
	return Event{ID: fmt.Sprintf("cond-%s-%s-%d-%d", c.Kind, c.Input, q, c.Time.UnixNano()), Format: IDContactID,
		Qualifier: q, Code: code, Area: 1, Zone: zone, Created: c.Time}, true
}

var cidNames = map[int]string{
	CIDFire: "fire", CIDSmoke: "smoke", CIDCallpoint: "pull station", CIDPanic: "panic", CIDDuress: "duress",
	CIDSilentHoldUp: "silent hold-up", 123: "audible panic", CIDFireSupervisory: "fire supervisory", CIDTamper: "tamper",
	CIDSensorTamper: "sensor tamper", CIDSystemTrouble: "system trouble", CIDACLoss: "AC loss", CIDRelayTrouble: "relay trouble",
	CIDPeripheral: "peripheral trouble", CIDCommTrouble: "communication trouble", CIDFailToCommunicate: "failure to communicate",
	CIDSensorTrouble: "sensor trouble", CIDManualTest: "manual test", CIDPeriodicTest: "periodic test", CIDWalkTest: "walk test",
}

// CIDName names a Contact ID event code, or "" if hallguard does not know it.
func CIDName(code int) string { return cidNames[code] }
