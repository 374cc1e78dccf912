package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// process is a child process the harness starts, kills and starts again:
// a ferry API or worker, or the NATS server. Its output goes to a log file
// that survives restarts.
type process struct {
	name    string
	path    string
	args    []string
	env     []string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when the current run has exited
	err    error         // exit status of the last run
	starts int
}

// errNotRunning is returned for a signal to a process that is down.
var errNotRunning = errors.New("not running")

// start runs the process; it is an error if it is already running.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("%s: already running", p.name)
		}
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: log: %w", p.name, err)
	}
	p.starts++
	fmt.Fprintf(logf, "\n=== chaos: start #%d of %s at %s\n", p.starts, p.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a Ctrl-C at the terminal reaches the harness
	// only, which then stops its children in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%s: start: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// signal sends sig to the running process and returns its pid and a channel
// closed when it has exited.
func (p *process) signal(sig os.Signal) (pid int, exited <-chan struct{}, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0, nil, errNotRunning
	}
	select {
	case <-p.done:
		return 0, nil, errNotRunning
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return 0, nil, fmt.Errorf("%s: %w", p.name, err)
	}
	return p.cmd.Process.Pid, p.done, nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *process) kill() (pid int, err error) {
	pid, exited, err := p.signal(syscall.SIGKILL)
	if err != nil {
		return 0, err
	}
	<-exited
	return pid, nil
}

// stop asks the process to stop (SIGTERM) and waits up to timeout, then
// kills it. It returns how the process ended.
func (p *process) stop(timeout time.Duration) error {
	_, exited, err := p.signal(syscall.SIGTERM)
	if errors.Is(err, errNotRunning) {
		return nil
	}
	if err != nil {
		return err
	}
	select {
	case <-exited:
		return p.exitErr()
	case <-time.After(timeout):
		_, _ = p.kill()
		return fmt.Errorf("%s: did not stop within %s after SIGTERM; killed", p.name, timeout)
	}
}

// running reports whether the process is up.
func (p *process) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// pid returns the pid of the running process, or 0.
func (p *process) pid() int {
	if !p.running() {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// exitErr returns how the last run ended (nil: exit status 0).
func (p *process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}
