package mqtt

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Discovery describes what to announce to Home Assistant's MQTT discovery
// (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery): a
// binary sensor per input and a sensor for the queue length, all tied to
// the hall's status topic for availability.
//
// Panic inputs are never announced: a robbery is silent (§4.3), and a
// dashboard on some screen in the hall must not show a pressed button.
type Discovery struct {
	// Prefix is the discovery prefix, usually "homeassistant".
	Prefix   string
	HallID   string
	HallName string
	Version  string
	Inputs   []DiscoveryInput
}

// DiscoveryInput is one input to announce.
type DiscoveryInput struct {
	ID, Name, Kind string
}

// discoveryMessage is one retained config message.
type discoveryMessage struct {
	topic   string
	payload []byte
}

func (d *Discovery) messages(t Topics) []discoveryMessage {
	if d == nil {
		return nil
	}
	device := map[string]any{"identifiers": []string{"hallguard_" + d.HallID}, "name": d.HallName,
		"manufacturer": "hallguard", "model": "hallguard edge box", "sw_version": d.Version}
	avail := map[string]any{"availability_topic": t.Status(), "payload_available": statusOnline, "payload_not_available": statusOffline}
	var out []discoveryMessage
	add := func(component, object string, cfg map[string]any) {
		for k, v := range avail {
			cfg[k] = v
		}
		cfg["device"] = device
		cfg["unique_id"] = objectID("hallguard_" + d.HallID + "_" + object)
		b, _ := json.Marshal(cfg)
		// <prefix>/<component>/<node_id>/<object_id>/config with the hall id
		// as node id: a level of its own, so a shared broker's ACL can give
		// each hall only its own (hallguard.acl: homeassistant/+/%u/+/config).
		out = append(out, discoveryMessage{topic: fmt.Sprintf("%s/%s/%s/%s/config", d.Prefix, component, objectID(d.HallID), objectID(object)), payload: b})
	}
	for _, in := range d.Inputs {
		if in.Kind == "panic" {
			continue // §4.3: silent
		}
		name := in.Name
		if name == "" {
			name = in.ID
		}
		cfg := map[string]any{"name": name, "state_topic": t.Input(in.ID),
			"value_template":        "{{ 'ON' if value_json.active else 'OFF' }}",
			"json_attributes_topic": t.Input(in.ID)}
		switch in.Kind {
		case "smoke", "callpoint":
			cfg["device_class"] = "smoke"
		case "tamper":
			cfg["device_class"] = "tamper"
		case "counter":
			cfg["device_class"] = "motion"
		}
		add("binary_sensor", in.ID, cfg)
	}
	add("sensor", "queue_length", map[string]any{"name": "Queue length", "state_topic": t.Queue(),
		"value_template": "{{ value_json.length }}", "unit_of_measurement": "customers", "state_class": "measurement",
		"json_attributes_topic": t.Queue()})
	return out
}

// objectID keeps what discovery allows in a node or object id.
func objectID(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		}
		return '_'
	}, s)
}
