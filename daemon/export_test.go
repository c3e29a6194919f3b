package daemon

// Test hooks into the daemon's MQTT handlers, for orders of events a real
// broker produces only under load (package daemon_test).

// CCTVAnswer delivers payload as the video system's answer on
// cctv.reply_topic.
func (d *Daemon) CCTVAnswer(payload []byte) { d.cctvReply("", payload) }

// CCTVAcked tells the daemon that the broker took the bookmark request id
// (its PUBACK), as the publisher's OnRecordAck does.
func (d *Daemon) CCTVAcked(id, incident, step string) {
	d.cctvAcked(id, incident, step)
}
