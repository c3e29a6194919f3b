package journal

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const crashEnv = "HALLGUARD_JOURNAL_CRASH_DB"

// TestHelperProcess is the child of TestCrash: it pushes reports (and
// appends records) in a loop and prints "R <id>" once a report is
// committed (Notify fired and Peek shows it) and "A <seq>" once Append
// returned, until it is killed.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process of TestCrash")
	}
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var out sync.Mutex
	say := func(format string, args ...any) {
		out.Lock()
		fmt.Fprintf(os.Stdout, format+"\n", args...) // unbuffered: SIGKILL loses nothing printed
		out.Unlock()
	}
	go func() {
		for i := 0; ; i++ {
			seqs, err := s.Append(Record{Kind: "input", Data: json.RawMessage(`{"i":` + strconv.Itoa(i) + `}`)})
			if err != nil {
				fmt.Fprintln(os.Stderr, "append:", err)
				os.Exit(2)
			}
			say("A %d", seqs[0])
		}
	}()
	ob := s.Outbox()
	pushed := 0
	for {
		n := 1 + rand.IntN(5)
		var batch []string
		for range n {
			m := message(pushed)
			m.ID = fmt.Sprintf("r-%06d", pushed)
			pushed++
			ob.Push(m)
			batch = append(batch, m.ID)
		}
		for len(ob.Peek(pushed)) < pushed {
			select {
			case <-ob.Notify():
			case <-time.After(30 * time.Second):
				fmt.Fprintln(os.Stderr, "no notify")
				os.Exit(2)
			}
		}
		for _, id := range batch {
			say("R %s", id)
		}
	}
}

// TestCrash kills the helper with SIGKILL at a random point, ten times, and
// checks that whatever it reported as committed survived, in order, with a
// sound chain.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	for run := range 10 {
		path := dbPath(t)
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var reports []string
		var appended []uint64
		started := make(chan struct{})
		read := make(chan struct{})
		go func() {
			defer close(read)
			sc := bufio.NewScanner(stdout)
			once := sync.Once{}
			for sc.Scan() {
				line := sc.Text()
				mu.Lock()
				switch {
				case strings.HasPrefix(line, "R "):
					reports = append(reports, line[2:])
					once.Do(func() { close(started) })
				case strings.HasPrefix(line, "A "):
					seq, _ := strconv.ParseUint(line[2:], 10, 64)
					appended = append(appended, seq)
				}
				mu.Unlock()
			}
		}()
		select {
		case <-started:
		case <-read:
			_ = cmd.Wait()
			t.Fatalf("run %d: helper ended before committing anything: %s", run, stderr.String())
		case <-time.After(60 * time.Second):
			t.Fatalf("run %d: helper committed nothing", run)
		}
		time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-read
		_ = cmd.Wait()

		s := openT(t, path, Options{})
		if r := s.Recovered(); r != nil {
			t.Fatalf("run %d: a crash made the database look damaged: %v", run, r)
		}
		pending := ids(s.Outbox().Peek(1 << 20))
		mu.Lock()
		committed, appendedN := len(reports), len(appended)
		for i, id := range reports {
			if i >= len(pending) || pending[i] != id {
				t.Fatalf("run %d: committed report %d (%s) not at its place after the crash (have %d pending)", run, i, id, len(pending))
			}
		}
		maxAppended := uint64(0)
		for _, seq := range appended {
			maxAppended = max(maxAppended, seq)
		}
		mu.Unlock()
		for i, id := range pending {
			if want := fmt.Sprintf("r-%06d", i); id != want {
				t.Fatalf("run %d: pending %d is %s, want %s (no gaps, no reordering)", run, i, id, want)
			}
		}
		res, err := s.Verify()
		if err != nil || res.FirstBad != 0 {
			t.Fatalf("run %d: Verify = %+v, %v", run, res, err)
		}
		if res.Last < maxAppended {
			t.Fatalf("run %d: journal ends at %d, the helper had record %d committed", run, res.Last, maxAppended)
		}
		reportsOnDisk, err := s.List(Filter{Kind: "report"})
		if err != nil || len(reportsOnDisk) != len(pending) {
			t.Fatalf("run %d: %d report records for %d pending reports (%v)", run, len(reportsOnDisk), len(pending), err)
		}
		t.Logf("run %d: child saw %d reports and %d records committed; on disk after SIGKILL: %d reports, %d records",
			run, committed, appendedN, len(pending), res.Records)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
