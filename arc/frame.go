package arc

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Message IDs (ANSI/SIA DC-09 "ID" tokens).
const (
	IDContactID = "ADM-CID" // Contact ID (SIA DC-05) events
	IDSIA       = "SIA-DCS" // SIA DC-03 events
	IDNull      = "NULL"    // supervision poll
	IDAck       = "ACK"
	IDNak       = "NAK"
	IDDuh       = "DUH" // the receiver did not understand the message
)

// TimeLayout is the DC-09 timestamp after the '_': HH:MM:SS,MM-DD-YYYY, UTC.
const TimeLayout = "15:04:05,01-02-2006"

// ParseTime reads a DC-09 timestamp (without its '_'). Go would take the
// ",01" after the seconds for a fraction, so the comma is read as a space.
func ParseTime(s string) (time.Time, error) {
	if len(s) != len(TimeLayout) || s[8] != ',' {
		return time.Time{}, fmt.Errorf("%w: timestamp %q", ErrFormat, s)
	}
	return time.Parse("15:04:05 01-02-2006", s[:8]+" "+s[9:])
}

// MaxFrame bounds a frame on the wire; a DC-09 length field holds at most
// 0x0FFF, so anything longer is not a frame.
const MaxFrame = 10 + 0x0FFF

// Errors callers branch on.
var (
	ErrCRC     = errors.New("arc: CRC mismatch")
	ErrLength  = errors.New("arc: length mismatch")
	ErrFormat  = errors.New("arc: malformed frame")
	ErrDecrypt = errors.New("arc: cannot decrypt")
	ErrNoKey   = errors.New("arc: encrypted frame and no key")
)

// Frame is one DC-09 message, decoded or to encode.
type Frame struct {
	ID        string // ADM-CID, SIA-DCS, NULL, ACK, NAK, DUH
	Encrypted bool   // "*ID": the data and timestamp are AES-encrypted
	Seq       int    // 0001-9999 (0000 in a NAK)
	Receiver  string // the receiver number after R (hex digits), or ""
	Line      string // the line prefix after L (hex digits), or ""
	Account   string // the account after '#' (or 'A' in a NAK)
	// Data is the content of the first [...] block, brackets excluded,
	// e.g. "#1234|1401 01 001". Extra holds further [..] blocks, if any.
	Data  string
	Extra []string
	// Time is the timestamp (UTC); zero when the frame carries none.
	Time time.Time
}

// CRC is the DC-09 CRC: CRC-16/ARC (polynomial 0x8005 reflected as
// 0xA001, initial value 0, no final XOR), over the bytes from the opening
// quote of the ID to the last byte before the CR.
func CRC(b []byte) uint16 {
	var c uint16
	for _, x := range b {
		c ^= uint16(x)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xA001
			} else {
				c >>= 1
			}
		}
	}
	return c
}

// Encode renders f as LF, CRC, length, body, CR. With a key the data,
// extra blocks and timestamp are encrypted (AES-CBC, zero IV, as DC-09
// specifies) after pad characters, hex-encoded, and the ID gets its '*'.
func (f Frame) Encode(key []byte) ([]byte, error) {
	var b strings.Builder
	b.WriteByte('"')
	if key != nil {
		b.WriteByte('*')
	}
	b.WriteString(f.ID)
	b.WriteByte('"')
	fmt.Fprintf(&b, "%04d", f.Seq)
	if f.Receiver != "" {
		b.WriteString("R" + f.Receiver)
	}
	if f.Line != "" {
		b.WriteString("L" + f.Line)
	}
	if f.ID == IDNak {
		b.WriteString("A" + f.Account)
	} else {
		b.WriteString("#" + f.Account)
	}
	b.WriteByte('[')
	var tail strings.Builder // what follows the first '['
	tail.WriteString(f.Data + "]")
	for _, x := range f.Extra {
		tail.WriteString("[" + x + "]")
	}
	if !f.Time.IsZero() {
		tail.WriteString("_" + f.Time.UTC().Format(TimeLayout))
	}
	if key != nil {
		plain := tail.String()
		if f.Data != "" {
			plain = "|" + plain // the pad ends at the first '|'
		}
		enc, err := encrypt(key, plain)
		if err != nil {
			return nil, err
		}
		b.WriteString(enc)
	} else {
		b.WriteString(tail.String())
	}
	body := b.String()
	if len(body) > 0x0FFF {
		return nil, fmt.Errorf("arc: frame of %d bytes is too long: %w", len(body), ErrLength)
	}
	return fmt.Appendf(nil, "\n%04X%04X%s\r", CRC([]byte(body)), len(body), body), nil
}

// padChars are the pad characters: never '|', '[' or ']'.
const padChars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func encrypt(key []byte, plain string) (string, error) {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return "", fmt.Errorf("arc: key: %w", err)
	}
	n := aes.BlockSize - len(plain)%aes.BlockSize // 1..16 pad characters
	pad := make([]byte, n)
	if _, err := rand.Read(pad); err != nil {
		return "", fmt.Errorf("arc: pad: %w", err)
	}
	for i := range pad {
		pad[i] = padChars[int(pad[i])%len(padChars)]
	}
	buf := append(pad, plain...)
	cipher.NewCBCEncrypter(blk, make([]byte, aes.BlockSize)).CryptBlocks(buf, buf)
	return strings.ToUpper(hex.EncodeToString(buf)), nil
}

func decrypt(key []byte, hexText string) (string, error) {
	ct, err := hex.DecodeString(hexText)
	if err != nil || len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return "", fmt.Errorf("%w: encrypted part is not whole hex blocks", ErrDecrypt)
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return "", fmt.Errorf("arc: key: %w", err)
	}
	cipher.NewCBCDecrypter(blk, make([]byte, aes.BlockSize)).CryptBlocks(ct, ct)
	// Strip the pad: it ends where the data ('#', '|') or the end of an
	// empty data block (']') begins; a '|' right before '#' is the
	// separator some transmitters (and hallguard) put after the pad.
	i := bytes.IndexAny(ct, "#|]")
	if i < 0 {
		return "", fmt.Errorf("%w: no data after the pad (wrong key?)", ErrDecrypt)
	}
	s := ct[i:]
	if len(s) > 1 && s[0] == '|' && s[1] == '#' {
		s = s[1:]
	}
	for _, c := range s {
		if c < 0x20 || c > 0x7e {
			return "", fmt.Errorf("%w: not text (wrong key?)", ErrDecrypt)
		}
	}
	return string(s), nil
}

// Decode parses one frame (with or without its LF and CR), checks its CRC
// and length, and decrypts it with key when it is encrypted. Frame.Data of
// an encrypted frame decoded without a key is the hex text and the error
// is ErrNoKey.
func Decode(raw []byte, key []byte) (Frame, error) {
	raw = bytes.TrimPrefix(raw, []byte("\n"))
	raw = bytes.TrimSuffix(raw, []byte("\r"))
	var f Frame
	if len(raw) < 8+len(`"NULL"0000#0[]`) || len(raw) > MaxFrame {
		return f, fmt.Errorf("%w: %d bytes", ErrFormat, len(raw))
	}
	crc, err1 := strconv.ParseUint(string(raw[:4]), 16, 16)
	n, err2 := strconv.ParseUint(string(raw[4:8]), 16, 16)
	if err1 != nil || err2 != nil {
		return f, fmt.Errorf("%w: CRC and length must be hex", ErrFormat)
	}
	body := raw[8:]
	if got := CRC(body); uint16(crc) != got {
		return f, fmt.Errorf("%w: frame says %04X, body gives %04X", ErrCRC, crc, got)
	}
	if int(n) != len(body) {
		return f, fmt.Errorf("%w: frame says %d, body is %d", ErrLength, n, len(body))
	}
	s := string(body)
	if s[0] != '"' {
		return f, fmt.Errorf("%w: no \"ID\"", ErrFormat)
	}
	q := strings.IndexByte(s[1:], '"')
	if q < 1 {
		return f, fmt.Errorf("%w: no \"ID\"", ErrFormat)
	}
	f.ID = s[1 : q+1]
	if strings.HasPrefix(f.ID, "*") {
		f.Encrypted, f.ID = true, f.ID[1:]
	}
	s = s[q+2:]
	if len(s) < 4 {
		return f, fmt.Errorf("%w: no sequence", ErrFormat)
	}
	seq, err := strconv.Atoi(s[:4])
	if err != nil || seq < 0 {
		return f, fmt.Errorf("%w: sequence %q", ErrFormat, s[:4])
	}
	f.Seq = seq
	s = s[4:]
	br := strings.IndexByte(s, '[')
	if br < 0 {
		return f, fmt.Errorf("%w: no data block", ErrFormat)
	}
	if err := f.parseIdent(s[:br]); err != nil {
		return f, err
	}
	tail := s[br+1:]
	if f.Encrypted {
		if key == nil {
			f.Data = tail
			return f, ErrNoKey
		}
		if tail, err = decrypt(key, tail); err != nil {
			return f, err
		}
	}
	return f, f.parseTail(tail)
}

// parseIdent reads [Rrrr][Llll](#acct | Aacct). A NAK names the account
// after 'A', which is also a hex digit: the last 'A' starts it.
func (f *Frame) parseIdent(s string) error {
	hexRun := func(s string) int {
		i := 0
		for i < len(s) && strings.IndexByte("0123456789ABCDEFabcdef", s[i]) >= 0 {
			i++
		}
		return i
	}
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s, f.Account = s[:i], s[i+1:]
	} else if i := strings.LastIndexByte(s, 'A'); i >= 0 && f.ID == IDNak {
		s, f.Account = s[:i], s[i+1:]
	}
	if f.Account != "" && (len(f.Account) > 16 || hexRun(f.Account) != len(f.Account)) {
		return fmt.Errorf("%w: account %q (1-16 hex digits)", ErrFormat, f.Account)
	}
	if strings.HasPrefix(s, "R") {
		n := hexRun(s[1:])
		if n == 0 || n > 6 {
			return fmt.Errorf("%w: receiver %q", ErrFormat, s)
		}
		f.Receiver, s = s[1:1+n], s[1+n:]
	}
	if strings.HasPrefix(s, "L") {
		n := hexRun(s[1:])
		if n == 0 || n > 6 {
			return fmt.Errorf("%w: line %q", ErrFormat, s)
		}
		f.Line, s = s[1:1+n], s[1+n:]
	}
	if s != "" {
		return fmt.Errorf("%w: %q before the data", ErrFormat, s)
	}
	return nil
}

// parseTail reads data], [extra]..., and _timestamp.
func (f *Frame) parseTail(s string) error {
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return fmt.Errorf("%w: data block not closed", ErrFormat)
	}
	f.Data, s = s[:end], s[end+1:]
	for strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return fmt.Errorf("%w: extra block not closed", ErrFormat)
		}
		f.Extra, s = append(f.Extra, s[1:end]), s[end+1:]
	}
	if s == "" {
		return nil
	}
	if s[0] != '_' {
		return fmt.Errorf("%w: %q after the data", ErrFormat, s)
	}
	t, err := ParseTime(s[1:])
	if err != nil {
		return fmt.Errorf("%w: timestamp %q", ErrFormat, s[1:])
	}
	f.Time = t
	return nil
}
