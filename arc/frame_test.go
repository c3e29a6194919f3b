package arc

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// Published DC-09 frames. Facts carried over (the bytes of each frame and
// its key), not code. Each is checked for CRC, length and, where the key
// is published, decryption.
var publishedFrames = []struct {
	name, source string
	frame        string
	key          []byte // the published key, if any
	// what the frame must decode to
	id, account, data string
	seq               int
	encrypted         bool
	time              string // TimeLayout, or ""
}{
	{
		name: "sia-dcs with receiver and line", frame: "\nF4D20029\"SIA-DCS\"0001RF3L77#1234[#1234|NRR|Atest]\r",
		source: "github.com/fioletoven/dc09 common/src/dc09/message.tests.rs (to_string_test)",
		id:     IDSIA, seq: 1, account: "1234", data: "#1234|NRR|Atest",
	},
	{
		name: "sia-dcs empty data", frame: "\n96ED0016\"SIA-DCS\"0001L0#1234[]\r",
		source: "github.com/fioletoven/dc09 common/src/dc09/message.tests.rs (parse_message_test)",
		id:     IDSIA, seq: 1, account: "1234", data: "",
	},
	{
		name: "nak with the receiver's time", frame: "\nE4410025\"NAK\"0000R0L0A0[]_16:20:01,09-24-2025\r",
		source: "github.com/fioletoven/dc09 common/src/dc09/message.tests.rs (parse_nak_test)",
		id:     IDNak, seq: 0, account: "0", time: "16:20:01,09-24-2025",
	},
	{
		name: "encrypted null poll, published key", frame: `76D80055"*NULL"0000R0L0#AAAB[B4BC8B40D0E6D959D6BEA78E88CC0B2155741A3C44FBB96D476A3E557CAD64D9`,
		source: "github.com/eavanvalkenburg/pysiaalarm tests/test_sia_package_cases.py (case_null); key KEY in tests/test_utils.py",
		key:    []byte("AAAAAAAAAAAAAAAA"), id: IDNull, seq: 0, account: "AAAB", encrypted: true, time: "18:24:52,07-05-2020",
	},
}

func TestPublishedFramesDecode(t *testing.T) {
	for _, tc := range publishedFrames {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Decode([]byte(tc.frame), tc.key)
			if err != nil {
				t.Fatalf("%s: %v", tc.source, err)
			}
			if f.ID != tc.id || f.Seq != tc.seq || f.Account != tc.account || f.Data != tc.data || f.Encrypted != tc.encrypted {
				t.Errorf("%s: got %+v", tc.source, f)
			}
			if tc.time != "" && f.Time.Format(TimeLayout) != tc.time {
				t.Errorf("%s: time %v, want %s", tc.source, f.Time, tc.time)
			}
		})
	}
}

// TestPublishedFramesOnlyCRCAndLength covers published frames whose key is
// not published: they must pass CRC and length, and decode as encrypted.
func TestEncryptedFramesWithoutKeyPassCRCAndLength(t *testing.T) {
	// github.com/eavanvalkenburg/pysiaalarm tests/test_sia_package_cases.py (case_encrypted_adm)
	raw := `D0850078"*ADM-CID"6879R0L0#123F[64F7ADD9BA9377DBF2C014BC709329BEEE345B5F20C60B7EB9D2C6B8C222666B13D0B4A114B448B0AC555FCC658DB6EE`
	f, err := Decode([]byte(raw), nil)
	if !errors.Is(err, ErrNoKey) {
		t.Fatalf("err %v, want ErrNoKey", err)
	}
	if f.ID != IDContactID || !f.Encrypted || f.Seq != 6879 || f.Account != "123F" || f.Receiver != "0" || f.Line != "0" {
		t.Errorf("got %+v", f)
	}
	// A wrong key is refused, not read as garbage.
	if _, err := Decode([]byte(raw), []byte("0123456789abcdef")); !errors.Is(err, ErrDecrypt) {
		t.Errorf("wrong key: err %v, want ErrDecrypt", err)
	}
}

// TestDecimalLengthIsRefused: pysiaalarm's case_adm_cid2 frame has a right
// CRC but writes its length in decimal (0047 for 47 bytes); DC-09 wants
// hex, so a strict receiver refuses it on length, not on CRC.
func TestDecimalLengthIsRefused(t *testing.T) {
	// github.com/eavanvalkenburg/pysiaalarm tests/test_sia_package_cases.py (case_adm_cid2)
	_, err := Decode([]byte(`57150047"ADM-CID"0247R4F39L4F39#4F39[#4F39|3401 01 057]`), nil)
	if !errors.Is(err, ErrLength) {
		t.Fatalf("err %v, want ErrLength", err)
	}
}

func TestCorruptFramesAreRefused(t *testing.T) {
	good := "\nF4D20029\"SIA-DCS\"0001RF3L77#1234[#1234|NRR|Atest]\r"
	for name, tc := range map[string]struct {
		raw  string
		want error
	}{
		"one bit flipped": {strings.Replace(good, "NRR", "NRS", 1), ErrCRC},
		"byte dropped":    {strings.Replace(good, "Atest", "Ates", 1), ErrCRC},
		"length wrong":    {strings.Replace(good, "0029", "0028", 1), ErrLength},
		"not hex":         {strings.Replace(good, "F4D2", "G4D2", 1), ErrFormat},
		"too short":       {"\n0000\r", ErrFormat},
	} {
		if _, err := Decode([]byte(tc.raw), nil); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", name, err, tc.want)
		}
	}
}

// TestOwnFramesPassTheSameChecks encodes hallguard's frames, clear and
// with AES-128/192/256, and decodes them with the same checks.
func TestOwnFramesPassTheSameChecks(t *testing.T) {
	at := time.Date(2026, 12, 7, 20, 1, 2, 0, time.UTC)
	keys := map[string][]byte{"clear": nil, "aes128": bytes.Repeat([]byte{1}, 16), "aes192": bytes.Repeat([]byte{2}, 24), "aes256": bytes.Repeat([]byte{3}, 32)}
	frames := []Frame{
		{ID: IDContactID, Seq: 1, Receiver: "12", Line: "3", Account: "1234", Data: "#1234|1122 01 001", Time: at},
		{ID: IDSIA, Seq: 9999, Line: "0", Account: "ABCDEF", Data: "#ABCDEF|Nri1/UA000|Asurge raised", Time: at},
		{ID: IDNull, Seq: 42, Receiver: "1", Line: "1", Account: "1234", Time: at},
		{ID: IDAck, Seq: 17, Receiver: "1", Line: "1", Account: "1234", Time: at},
	}
	for kname, key := range keys {
		for _, in := range frames {
			raw, err := in.Encode(key)
			if err != nil {
				t.Fatalf("%s %s: %v", kname, in.ID, err)
			}
			if raw[0] != '\n' || raw[len(raw)-1] != '\r' {
				t.Errorf("%s %s: frame not framed by LF..CR: %q", kname, in.ID, raw)
			}
			out, err := Decode(raw, key)
			if err != nil {
				t.Fatalf("%s %s: %v (%q)", kname, in.ID, err, raw)
			}
			in.Encrypted = key != nil
			if out.ID != in.ID || out.Seq != in.Seq || out.Account != in.Account || out.Data != in.Data ||
				out.Receiver != in.Receiver || out.Line != in.Line || !out.Time.Equal(in.Time) || out.Encrypted != in.Encrypted {
				t.Errorf("%s: %+v\n came back as %+v", kname, in, out)
			}
			if key != nil && bytes.Contains(raw, []byte(in.Data)) && in.Data != "" {
				t.Errorf("%s %s: data in clear in %q", kname, in.ID, raw)
			}
		}
	}
}
