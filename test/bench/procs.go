package main

// Processes the harness starts (mosquitto, hallguard, Node-RED, its own
// child clients): each is started here, and stopped by its PID, SIGTERM
// first and SIGKILL after a bounded wait. Nothing is ever stopped by name.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hallguard/hallguard/test/hallproc"
)

// proc is one child process.
type proc struct {
	name    string
	hp      *hallproc.Proc // nil for a view of an in-process daemon
	logPath string
	started time.Time
}

var (
	procsMu sync.Mutex
	procs   = map[*proc]bool{} // running, for the emergency stop at exit
)

// startProc starts bin with args, stdout and stderr to logPath.
func startProc(name, logPath string, env []string, bin string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	// Its own process group, so a Ctrl-C on make reaches the harness,
	// which then stops each child by PID.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &proc{name: name, logPath: logPath}
	p.started = time.Now()
	if p.hp, err = hallproc.Start(cmd); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	procsMu.Lock()
	procs[p] = true
	procsMu.Unlock()
	go func() {
		<-p.hp.Done()
		f.Close()
		procsMu.Lock()
		delete(procs, p)
		procsMu.Unlock()
	}()
	return p, nil
}

func (p *proc) pid() int { return p.hp.PID() }

func (p *proc) exited() bool { return p.hp != nil && p.hp.Exited() }

// waitErr is the exit's error, once exited.
func (p *proc) waitErr() error { return p.hp.Err() }

// stop sends SIGTERM to the PID and waits up to timeout, then SIGKILL.
func (p *proc) stop(timeout time.Duration) error {
	if p == nil || p.exited() {
		return nil
	}
	_ = p.hp.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.hp.Done():
		return nil
	case <-time.After(timeout):
	}
	_ = p.hp.Cmd.Process.Kill()
	select {
	case <-p.hp.Done():
	case <-time.After(5 * time.Second):
	}
	return fmt.Errorf("%s (pid %d) did not stop on SIGTERM within %s: killed", p.name, p.pid(), timeout)
}

// logTail returns the last n lines of the process's log.
func (p *proc) logTail(n int) string {
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stopAll stops every child still running (at exit, also after a failure).
func stopAll() {
	procsMu.Lock()
	var ps []*proc
	for p := range procs {
		ps = append(ps, p)
	}
	procsMu.Unlock()
	for _, p := range ps {
		if err := p.stop(10 * time.Second); err != nil {
			warnf("%v", err)
		}
	}
}

// freePort returns a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	a, err := hallproc.FreePorts(1)
	if err != nil {
		return 0, err
	}
	_, port, _ := net.SplitHostPort(a[0])
	return strconv.Atoi(port)
}

// waitTCP waits until addr accepts a connection.
func waitTCP(addr string, d time.Duration, p *proc) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.waitErr(), p.logTail(20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting connections after %s", addr, d)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// --- /proc ------------------------------------------------------------------

// userHZ is the unit of utime and stime in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux architecture (sysconf(_SC_CLK_TCK)).
const userHZ = 100

// cpuSeconds is utime+stime of pid from /proc/<pid>/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(string(b[i+2:]))
	// After ")": state is field 3; utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return float64(ut+st) / userHZ, nil
}

// cpuNanos is the time on CPU of every thread of pid, from
// /proc/<pid>/task/*/schedstat (nanoseconds; finer than utime+stime).
func cpuNanos(pid int) (float64, error) {
	dirs, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, d := range dirs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, d.Name()))
		if err != nil {
			continue // the thread ended
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			v, _ := strconv.ParseFloat(f[0], 64)
			sum += v
		}
	}
	return sum / 1e9, nil
}

// rssMiB is VmRSS of pid from /proc/<pid>/status.
func rssMiB(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// rssSplit is RssAnon (heap, stacks) and RssFile (the binary's pages) of
// pid, from /proc/<pid>/status.
func rssSplit(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	var parts []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, k := range []string{"RssAnon:", "RssFile:"} {
			if rest, ok := strings.CutPrefix(line, k); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
				parts = append(parts, fmt.Sprintf("%s %.1f", strings.TrimSuffix(k, ":"), kb/1024))
			}
		}
	}
	return strings.Join(parts, ", ")
}

// mappedMiB is the resident size of pid's mappings of files named name
// (from /proc/<pid>/smaps).
func mappedMiB(pid int, name string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return 0
	}
	var kb float64
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			in = len(f) >= 6 && filepath.Base(f[len(f)-1]) == name
			continue
		}
		if in && len(f) >= 2 && f[0] == "Rss:" {
			v, _ := strconv.ParseFloat(f[1], 64)
			kb += v
		}
	}
	return kb / 1024
}

// cpuSample is a process's CPU counters at one moment.
type cpuSample struct{ ticks, nanos float64 }

func sampleCPU(pid int) cpuSample {
	t, _ := cpuSeconds(pid)
	n, _ := cpuNanos(pid)
	return cpuSample{t, n}
}

func (a cpuSample) sub(b cpuSample) cpuSample { return cpuSample{a.ticks - b.ticks, a.nanos - b.nanos} }

// --- files ------------------------------------------------------------------

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o600)
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
