package journal

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/hallguard/hallguard/devices/clock"
)

// TestDiskFullTmpfs fills a real file system: a tiny tmpfs (needs
// CAP_SYS_ADMIN; skipped where mount is not permitted, the injected-fault
// test covers the logic). Reports keep flowing, the trouble is raised once,
// and after the file system is grown (remount) the backlog reaches the disk.
func TestDiskFullTmpfs(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=256k,mode=0700"); err != nil {
		t.Skipf("mount of a tmpfs not permitted here (%v): disk-full behaviour is covered by TestDegradedInjected", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	clk := clock.NewFake(t0)
	path := filepath.Join(mnt, "hallguard.db")
	var trouble troubleLog
	s, err := Open(path, Options{Clock: clk, OnTrouble: trouble.hook})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ob := s.Outbox()
	big := strings.Repeat("火警 fire alarm, second floor. ", 200) // ~6 KB a report, stored twice
	var pushed []string
	push := func(i int) {
		m := message(i)
		m.Report.Other = big
		ob.Push(m)
		pushed = append(pushed, m.ID)
	}
	full := -1
	for i := 0; i < 500; i++ {
		push(i)
		waitFor(t, "the report durable or degraded", func() bool { return len(ob.Peek(1000)) == i+1 })
		if d, _ := s.Degraded(); d {
			full = i
			break
		}
	}
	if full < 0 {
		t.Fatal("256 KiB tmpfs never filled up")
	}
	for i := full + 1; i < full+21; i++ {
		push(i)
	}
	if got := ids(ob.Peek(1000)); !reflect.DeepEqual(got, pushed) {
		t.Fatalf("Peek while the disk is full: %d of %d reports", len(got), len(pushed))
	}
	if _, err := s.Append(Record{Kind: "input"}); !errors.Is(err, ErrDegraded) {
		t.Fatalf("Append on a full disk: %v", err)
	}
	_, terrs := trouble.get()
	t.Logf("disk full after %d reports; trouble: %v", full, terrs[0])
	clk.Advance(DefaultRetryEvery) // still full
	waitFor(t, "the retry to end", func() bool { return clk.Pending() == 1 })

	if err := syscall.Mount("tmpfs", mnt, "tmpfs", syscall.MS_REMOUNT, "size=16m,mode=0700"); err != nil {
		t.Fatalf("remount larger: %v", err)
	}
	clk.Advance(DefaultRetryEvery)
	waitWritingAgain(t, s, "writing again", &trouble)
	s2 := openT(t, path, Options{Clock: clk})
	got := s2.Outbox().Peek(1000)
	if !reflect.DeepEqual(ids(got), pushed) || !allRedelivered(got) {
		t.Fatalf("after reopen: %d pending, want %d", len(got), len(pushed))
	}
	res, err := s2.Verify()
	if err != nil || res.FirstBad != 0 || res.Records != uint64(len(pushed)+1) {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
	t.Logf("%d reports and 1 record on disk after the file system was grown", len(pushed))
}
