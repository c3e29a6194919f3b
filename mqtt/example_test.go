package mqtt_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hallguard/hallguard/daemon/config"
	"github.com/hallguard/hallguard/daemon/engine"
	"github.com/hallguard/hallguard/mqtt"
)

// The payload of the first report of a robbery, as sent to
// hallguard/main-st/alerts/robbery and retained on
// hallguard/main-st/incidents/20260301T074512-a3f9c1.
func ExampleMarshalReport() {
	at := time.Date(2026, 3, 1, 15, 45, 12, 123000000, time.FixedZone("CST", 8*3600))
	r := engine.Report{
		ID: "20260301T074512-a3f9c1.v1", Incident: "20260301T074512-a3f9c1", Seq: 7, Version: 1,
		Event: engine.EventRaised, Playbook: "robbery", Section: "§4.3(a)", Variant: "armed",
		Origin: engine.OriginButton, Source: "panic-teller-1", State: engine.StateActive, Silent: true,
		Hall:       config.Hall{ID: "main-st", Name: "营业厅", Location: "Main St. 1"},
		OccurredAt: at, Type: config.Text{ZH: "抢劫", EN: "robbery"},
		Measures: []engine.Measure{{At: at, Kind: "output", Text: "police-link on", Section: "§4.3(a)2", By: "hallguard"}},
		Steps: []engine.StepState{{ID: "secure_cash_take_cover", Section: "§4.3(a)1",
			Text: config.Text{ZH: "保持镇静,收拢现金,锁好保险柜", EN: "Stay calm, gather the cash, lock the safe."}}},
		Presses: 1, Inputs: []string{"panic-teller-1"},
	}
	b, err := mqtt.MarshalReport(r, at.Add(3*time.Millisecond))
	if err != nil {
		panic(err)
	}
	var out bytes.Buffer
	_ = json.Indent(&out, b, "", "  ")
	fmt.Println(out.String())
	// Output:
	// {
	//   "id": "20260301T074512-a3f9c1.v1",
	//   "incident": "20260301T074512-a3f9c1",
	//   "seq": 7,
	//   "version": 1,
	//   "event": "raised",
	//   "playbook": "robbery",
	//   "section": "§4.3(a)",
	//   "state": "active",
	//   "origin": "button",
	//   "source": "panic-teller-1",
	//   "drill": false,
	//   "silent": true,
	//   "hall": {
	//     "id": "main-st",
	//     "name": "营业厅",
	//     "location": "Main St. 1"
	//   },
	//   "occurred_at": "2026-03-01T07:45:12.123Z",
	//   "type": "robbery",
	//   "type_zh": "抢劫",
	//   "variant": "armed",
	//   "impact": "unknown",
	//   "measures": [
	//     {
	//       "at": "2026-03-01T07:45:12.123Z",
	//       "kind": "output",
	//       "text": "police-link on",
	//       "section": "§4.3(a)2",
	//       "by": "hallguard"
	//     }
	//   ],
	//   "control": "unknown",
	//   "trend": "unknown",
	//   "other": "unknown",
	//   "steps": [
	//     {
	//       "id": "secure_cash_take_cover",
	//       "section": "§4.3(a)1",
	//       "zh": "保持镇静,收拢现金,锁好保险柜",
	//       "en": "Stay calm, gather the cash, lock the safe.",
	//       "done": false,
	//       "by": "",
	//       "at": null
	//     }
	//   ],
	//   "presses": 1,
	//   "inputs": [
	//     "panic-teller-1"
	//   ],
	//   "redelivered": false,
	//   "sent_at": "2026-03-01T07:45:12.126Z"
	// }
}
