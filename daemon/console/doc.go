// Package console is the staff console: the page the hall's kiosk shows at
// /console/ on the daemon's local listener (http.local_listen, loopback), for
// Chromium in kiosk mode on a 1024×600 touchscreen.
//
// It shows the hall, the time, the broker connection, the queue and every
// open, non-silent incident with its playbook steps (zh, with en), and lets
// staff act with their PIN: mark steps done, acknowledge, resolve what the
// hall may resolve, raise the manual playbooks, start and stop drills, add
// report updates. Every action goes through the engine's command path
// (engine.Engine.Do, origin staff, by the staff member's name) and is
// journalled and counted as the MQTT commands are.
//
// What it must not do: show anything of a silent playbook (§4.3 robbery,
// duress). Silent incidents are filtered out on the server, before anything
// is encoded for the page, so the page never receives them: a robber in
// front of the screen sees the console exactly as before. The page holds no
// secret: PINs are checked here against PBKDF2 hashes from the config.
// The console never drives outputs and never calls below the engine.
package console
