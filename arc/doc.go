// Package arc is hallguard's own alarm transmitter to alarm receiving
// centres (ARC): ANSI/SIA DC-09 frames over TCP or UDP, carrying Contact ID
// (ADM-CID) or SIA DC-03 (SIA-DCS) events, with AES encryption, ACK/NAK
// handling, primary and backup receivers, NULL supervision polls and the
// periodic test report. It is the second path beside MQTT (EN 50136 dual
// path): a report is retired on this path only on this path's own ACK.
//
// It also holds the reference receiver behind `hallguard arc listen`.
//
// What it must not do:
//   - import the engine's internals: it maps engine.Report and
//     engine.Condition, the engine's published effect types, and nothing
//     else; nor paho or anything of the MQTT path, so that one path failing
//     never takes the other down;
//   - reveal anything in the hall: a robbery goes out as a silent hold-up
//     code (§4.3) and nothing here drives an output or a screen;
//   - lose an event: an event is pushed to the durable Queue before it is
//     sent and retired only on a receiver's ACK (§3.2, §3.5);
//   - trust the network: frames are bounded, CRC- and length-checked, and
//     an ACK must echo the sequence and account it answers.
//
// Every timer runs on an injected clock.Clock, so tests control time.
package arc
