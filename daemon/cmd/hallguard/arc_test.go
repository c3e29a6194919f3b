package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestARCTestAgainstARCListen runs the two tools against each other:
// `arc listen` decrypts and ACKs, `arc test` sends a 601 and prints the
// answer and the round trip; listen prints the event readably.
func TestARCTestAgainstARCListen(t *testing.T) {
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "arc-key")
	if err := os.WriteFile(keyPath, []byte(strings.Repeat("3c", 16)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- arcListen(ctx, []string{"-listen", "127.0.0.1:0", "-key-file", keyPath}, &out, &errOut)
	}()
	var addr string
	re := regexp.MustCompile(`listening on tcp (\S+)`)
	for end := time.Now().Add(10 * time.Second); addr == "" && time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if m := re.FindStringSubmatch(errOut.String()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatalf("arc listen did not say where it listens: %q", errOut.String())
	}
	playbooks, _ := filepath.Abs(filepath.Join("..", "..", "..", "configs", "playbooks"))
	cfgPath := filepath.Join(dir, "hall.yaml")
	cfg := fmt.Sprintf(`hall: {id: t-hall, name: Test hall, location: 1 Test Road}
backend: sim
roles: [{id: supervisor}, {id: center_manager}, {id: general_manager}]
commands: {auth: none}
playbooks_dir: %s
state_dir: %s
arc:
  account: "4F39"
  key_file: %s
  category: SP4
  receivers: [{name: primary, address: %q}]
`, playbooks, dir, keyPath, addr)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var tout, terr bytes.Buffer
	if code := run([]string{"arc", "test", "-config", cfgPath}, &tout, &terr); code != exitOK {
		t.Fatalf("arc test: exit %d\n%s%s", code, tout.String(), terr.String())
	}
	if !regexp.MustCompile(`primary\s+tcp\s+\S+\s+ACK seq \d{4} \(AES\)\s+round trip \S+`).MatchString(tout.String()) {
		t.Errorf("arc test printed %q", tout.String())
	}
	for end := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "manual test") && time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
	}
	if got := out.String(); !strings.Contains(got, "ADM-CID (AES)") || !strings.Contains(got, "CID new 601 manual test area 01 zone 000") || !strings.Contains(got, "-> ACK") {
		t.Errorf("arc listen printed %q", got)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("arc listen: exit %d", code)
	}

	// No receiver there: arc test says so and exits 1.
	cancel()
	os.WriteFile(cfgPath, []byte(strings.Replace(cfg, addr, "127.0.0.1:1", 1)), 0o600)
	tout.Reset()
	terr.Reset()
	if code := run([]string{"arc", "test", "-config", cfgPath}, &tout, &terr); code != exitFail {
		t.Errorf("arc test with no receiver: exit %d, want %d\n%s", code, exitFail, tout.String())
	}
}

// TestARCListenRefusesExposedKey: listen reads its key like the daemon.
func TestARCListenRefusesExposedKey(t *testing.T) {
	keyPath := filepath.Join(t.TempDir(), "arc-key")
	os.WriteFile(keyPath, []byte(strings.Repeat("3c", 16)), 0o644)
	os.Chmod(keyPath, 0o644)
	var out, errOut bytes.Buffer
	if code := arcListen(context.Background(), []string{"-listen", "127.0.0.1:0", "-key-file", keyPath}, &out, &errOut); code != exitConfig {
		t.Errorf("exit %d, want %d: %s", code, exitConfig, errOut.String())
	}
}
