package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/ferry-relay/ferry/queue"
)

// The harness runs its NATS server as a child process it can kill: itself,
// started again with these variables set (the chaos binary, or the test
// binary under go test). The JetStream store is a directory of the run, so
// streams, consumers and messages survive a restart as they would on disk.
const (
	natsdAddrEnv = "FERRY_CHAOS_NATSD_ADDR"
	natsdDirEnv  = "FERRY_CHAOS_NATSD_DIR"
)

// natsdRole runs the NATS server and exits, when this process was started as
// one; it returns false otherwise. Call it first thing in main or TestMain.
func natsdRole() bool {
	addr := os.Getenv(natsdAddrEnv)
	if addr == "" {
		return false
	}
	if err := runNATSD(addr, os.Getenv(natsdDirEnv)); err != nil {
		fmt.Fprintln(os.Stderr, "natsd:", err)
		os.Exit(1)
	}
	os.Exit(0)
	return true
}

// runNATSD serves NATS with JetStream on addr until SIGTERM or SIGINT.
func runNATSD(addr, dir string) error {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	srv, err := queue.StartEmbedded(dir, host, port)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "natsd: listening on", srv.URL(), "store", dir)
	<-ctx.Done()
	srv.Shutdown()
	return nil
}

// natsdProcess returns the NATS server process of a run.
func natsdProcess(addr, dir, logPath string) (*process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(), natsdAddrEnv+"="+addr, natsdDirEnv+"="+dir)
	return &process{name: "nats", path: self, env: env, logPath: logPath}, nil
}
