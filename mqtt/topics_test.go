package mqtt

import "testing"

func TestTopics(t *testing.T) {
	tp := NewTopics("", "main-st")
	custom := NewTopics("bank/halls/", "h1")
	for _, tc := range []struct{ name, got, want string }{
		{"root", tp.Root(), "hallguard/main-st"},
		{"all", tp.All(), "hallguard/main-st/#"},
		{"status", tp.Status(), "hallguard/main-st/status"},
		{"input", tp.Input("panic-teller-1"), "hallguard/main-st/inputs/panic-teller-1"},
		{"queue", tp.Queue(), "hallguard/main-st/queue"},
		{"incident", tp.Incident("20260301-a3f9c1"), "hallguard/main-st/incidents/20260301-a3f9c1"},
		{"alert", tp.Alert("robbery", false), "hallguard/main-st/alerts/robbery"},
		{"drill alert", tp.Alert("robbery", true), "hallguard/main-st/drills/alerts/robbery"},
		{"conditions", tp.Conditions(), "hallguard/main-st/conditions"},
		{"condition events", tp.ConditionEvents(), "hallguard/main-st/events/condition"},
		{"command", tp.Command("ack"), "hallguard/main-st/cmd/ack"},
		{"all commands", tp.Command("+"), "hallguard/main-st/cmd/+"},
		{"under", tp.Under("cmd/+"), "hallguard/main-st/cmd/+"},
		{"custom prefix", custom.Status(), "bank/halls/h1/status"},
		{"unsafe id", tp.Input("a/b+#"), "hallguard/main-st/inputs/a_b__"},
		{"empty id", tp.Input(""), "hallguard/main-st/inputs/_"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if rel, ok := tp.Rel("hallguard/main-st/cmd/ack"); !ok || rel != "cmd/ack" {
		t.Errorf("Rel = %q, %v", rel, ok)
	}
	if _, ok := tp.Rel("hallguard/other/cmd/ack"); ok {
		t.Error("Rel accepted another hall's topic")
	}
}

func TestBrokerURLRedacted(t *testing.T) {
	for in, want := range map[string]string{
		"tcp://center:s3cret@host:8884": "tcp://center:xxxxx@host:8884",
		"tcp://host:1883":               "tcp://host:1883",
	} {
		if got := redacted(in); got != want {
			t.Errorf("redacted(%q) = %q, want %q", in, got, want)
		}
	}
}
