package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/ferry-relay/ferry/internal/natsserver"
)

// The harness runs its NATS server as a child process it can kill: itself,
// started again with these variables set (the chaos binary, or the test
// binary under go test). The JetStream store is a directory of the run, so
// streams, consumers and messages survive a restart as they would on disk.
const (
	natsdAddrEnv = "FERRY_CHAOS_NATSD_ADDR"
	natsdDirEnv  = "FERRY_CHAOS_NATSD_DIR"
	// On a cluster: the server's name, its cluster address and the other
	// servers' (comma-separated nats://host:port).
	natsdNameEnv    = "FERRY_CHAOS_NATSD_NAME"
	natsdClusterEnv = "FERRY_CHAOS_NATSD_CLUSTER"
	natsdRoutesEnv  = "FERRY_CHAOS_NATSD_ROUTES"
)

// natsdNode is a server's place in a NATS cluster.
type natsdNode struct {
	name    string
	cluster string   // host:port the other servers connect to
	routes  []string // the other servers' cluster URLs
}

// natsdRole runs the NATS server and exits, when this process was started as
// one; it returns false otherwise. Call it first thing in main or TestMain.
func natsdRole() bool {
	addr := os.Getenv(natsdAddrEnv)
	if addr == "" {
		return false
	}
	var node *natsdNode
	if name := os.Getenv(natsdNameEnv); name != "" {
		node = &natsdNode{name: name, cluster: os.Getenv(natsdClusterEnv),
			routes: strings.Split(os.Getenv(natsdRoutesEnv), ",")}
	}
	if err := runNATSD(addr, os.Getenv(natsdDirEnv), node); err != nil {
		fmt.Fprintln(os.Stderr, "natsd:", err)
		os.Exit(1)
	}
	os.Exit(0)
	return true
}

// runNATSD serves NATS with JetStream on addr, as a node of a cluster
// when node is set, until SIGTERM or SIGINT.
func runNATSD(addr, dir string, node *natsdNode) error {
	host, port, err := splitHostPort(addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var srv *natsserver.Server
	if node == nil {
		srv, err = natsserver.Start(dir, host, port)
	} else {
		chost, cport, cerr := splitHostPort(node.cluster)
		if cerr != nil {
			return cerr
		}
		srv, err = natsserver.StartNode(natsserver.NodeOptions{Name: node.name, Host: host, Port: port,
			ClusterHost: chost, ClusterPort: cport, Routes: node.routes, Dir: dir})
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "natsd: listening on", srv.Addr(), "store", dir)
	<-ctx.Done()
	srv.Shutdown()
	return nil
}

func splitHostPort(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portStr)
	return host, port, err
}

// natsdProcess returns a NATS server process of a run: the only one, or a
// node of a cluster.
func natsdProcess(addr, dir, logPath string, node *natsdNode) (*process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(), natsdAddrEnv+"="+addr, natsdDirEnv+"="+dir)
	if node != nil {
		env = append(env, natsdNameEnv+"="+node.name, natsdClusterEnv+"="+node.cluster,
			natsdRoutesEnv+"="+strings.Join(node.routes, ","))
	}
	return &process{name: "nats", path: self, env: env, logPath: logPath}, nil
}
