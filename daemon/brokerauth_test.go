package daemon_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hallguard/hallguard/daemon"
)

// TestBrokerPasswordFileUnwritableStillRuns: a state directory where the
// embedded broker's password file cannot be made or read (a disk gone
// read-only, a file that is not one) must not keep the daemon from running
// (a missed alarm is the worst bug): the daemon runs with a password of this
// run only, as the journal runs from memory, and raises trouble.
func TestBrokerPasswordFileUnwritableStillRuns(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "broker.passwd"), 0o700); err != nil { // not a file: cannot be read or written
		t.Fatal(err)
	}
	r := startHall(t, inDir(dir))
	r.eventually("connected to the embedded broker", func() bool {
		return strings.Contains(r.metrics(), "\nhallguard_mqtt_connected 1")
	})
	if m := r.metrics(); !strings.Contains(m, `hallguard_condition_active{class="trouble",kind="broker_credentials"} 1`) {
		t.Errorf("no broker_credentials trouble raised:\n%s", m)
	}
}

// TestBrokerPasswordFileReadableByOthersRefused: a password file that group
// or others can read is refused at start, naming the file (a bad config is
// refused, not run).
func TestBrokerPasswordFileReadableByOthersRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "broker.passwd")
	if err := os.WriteFile(path, []byte("hallguard:secret-of-the-daemon\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	err := runErr(t, dir)
	if err == nil || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "secret-of-the-daemon") {
		t.Fatalf("Run with a world-readable password file: %v; want an error naming the file, never its contents", err)
	}
}

// runErr runs the test hall on stateDir and returns Run's error when it
// ends by itself within 10 s (nil if it ran: then it is stopped).
func runErr(t *testing.T, stateDir string) error {
	t.Helper()
	cfg := hallConfig(t, hallYAML, stateDir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, cfg, daemon.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		cancel()
		<-done
		return nil
	}
}
