package mqtt

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDiscoveryAnnouncesInputsButNeverPanicButtons(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	disc := &Discovery{Prefix: "homeassistant", HallID: testHall.ID, HallName: "Test hall", Version: "test",
		Inputs: []DiscoveryInput{{ID: "smoke-hall", Kind: "smoke", Name: "Hall smoke"}, {ID: "panic-1", Kind: "panic"}, {ID: "lid", Kind: "tamper"}}}
	p := startPublisher(t, testConfig(b.URL(), "hg-disc"), Options{Discovery: disc})
	eventually(t, "connection", p.Connected)

	root := NewTopics("", testHall.ID)
	smoke := retainedOn(t, b.URL(), "homeassistant/binary_sensor/"+testHall.ID+"/smoke-hall/config")
	var cfg map[string]any
	if err := json.Unmarshal([]byte(smoke), &cfg); err != nil {
		t.Fatalf("smoke discovery config %q: %v", smoke, err)
	}
	// The hall id is the node id, a topic level of its own, so that a
	// broker's ACL can give each hall its own discovery topics
	// (configs/mosquitto/hallguard.acl: homeassistant/+/%u/+/config).
	for k, want := range map[string]string{"unique_id": "hallguard_" + testHall.ID + "_smoke-hall", "state_topic": root.Input("smoke-hall"), "availability_topic": root.Status(),
		"device_class": "smoke", "name": "Hall smoke", "payload_available": "online"} {
		if cfg[k] != want {
			t.Errorf("smoke %s = %v, want %q", k, cfg[k], want)
		}
	}
	if q := retainedOn(t, b.URL(), "homeassistant/sensor/"+testHall.ID+"/queue_length/config"); !strings.Contains(q, `"state_topic":"`+root.Queue()+`"`) {
		t.Errorf("queue sensor config = %q", q)
	}
	if got := retainedOn(t, b.URL(), "homeassistant/binary_sensor/"+testHall.ID+"/panic-1/config"); got != "" {
		t.Errorf("panic button announced to Home Assistant (robbery must stay silent, §4.3): %s", got)
	}
}
