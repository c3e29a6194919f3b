package mqtt

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestReportsCarryTheJournalHead: every report tells the center the
// journal's chain head as of its sending (issue #12 §5), so the center
// holds an anchor for every report; without a journal it is left out.
func TestReportsCarryTheJournalHead(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	topics := NewTopics("", testHall.ID)
	col := collect(t, b.URL(), topics.All())
	hash := strings.Repeat("ab", 32)
	seq := uint64(41)
	p := startPublisher(t, testConfig(b.URL(), "hg-head"), Options{JournalHead: func() (uint64, string) { seq++; return seq, hash }})
	p.Report(sampleReport("inc-1", 1))
	p.JournalHead(map[string]any{"hall": testHall.ID, "seq": 7, "hash": hash, "alg": "none"})

	eventually(t, "the report", func() bool { return len(col.on(topics.Alert("robbery", false))) == 1 })
	var got struct {
		Journal *struct {
			Seq  uint64 `json:"seq"`
			Hash string `json:"hash"`
		} `json:"journal"`
	}
	if err := json.Unmarshal(col.on(topics.Alert("robbery", false))[0].payload, &got); err != nil {
		t.Fatal(err)
	}
	if got.Journal == nil || got.Journal.Seq < 42 || got.Journal.Hash != hash {
		t.Fatalf("report journal = %+v, want the head the journal gave", got.Journal)
	}
	eventually(t, "retained journal/head", func() bool {
		return strings.Contains(retainedOn(t, b.URL(), topics.JournalHead()), `"seq":7`)
	})

	none := startPublisher(t, testConfig(b.URL(), "hg-nohead"), Options{})
	none.Report(sampleReport("inc-2", 1))
	eventually(t, "the second report", func() bool { return len(col.on(topics.Incident("inc-2"))) >= 1 })
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(col.on(topics.Incident("inc-2"))[0].payload, &raw)
	if j, ok := raw["journal"]; ok {
		t.Errorf("without a journal: journal = %s, want it left out", j)
	}
}
