// Package natsserver runs a NATS server with JetStream inside the process
// (nats-server/v2): the single-machine default of ferry serve, and the
// server of test environments and harnesses. Only cmd/ and tests import it,
// so the API, store and sweeper never link the server.
package natsserver

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is a NATS server with JetStream running inside the process, for a
// single machine that should not need a NATS install.
type Server struct {
	srv *server.Server
	// token is what a client must present; "" for a cluster node.
	token string
}

// tokenFile holds the embedded server's token in its store directory, so a
// restarted server takes the clients of the previous one back.
const tokenFile = "ferry-nats-token"

// Start starts a NATS server with JetStream storing under dir,
// listening on host:port (port -1 picks a free one). It is never open
// without credentials: clients must present a random token, generated at
// the first start and kept in dir (mode 0600). URL carries it.
func Start(dir, host string, port int) (*Server, error) {
	token, err := Token(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	return StartWithToken(dir, host, port, token)
}

// StartWithToken is Start with the token given: a server
// restarted after losing its store takes back the clients of the one
// before.
func StartWithToken(dir, host string, port int, token string) (*Server, error) {
	if len(token) < 32 {
		return nil, fmt.Errorf("embedded nats: a token of at least 32 characters is required")
	}
	srv, err := server.NewServer(&server.Options{
		ServerName:    "ferry-embedded",
		Host:          host,
		Port:          port,
		JetStream:     true,
		StoreDir:      dir,
		NoSigs:        true,
		NoLog:         true,
		Authorization: token,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready after 10s")
	}
	return &Server{srv: srv, token: token}, nil
}

// Token is the token of the embedded server storing under dir: the
// one kept there, or a new one, kept. A process that starts the server in
// another process (make chaos) reads it to connect.
func Token(dir string) (string, error) {
	path := filepath.Join(dir, tokenFile)
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	token := hex.EncodeToString(raw[:])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep the token: %w", err)
	}
	return token, nil
}

// URL is where clients connect, with the token: pass it to Connect, never
// to a log (Addr is for that).
func (e *Server) URL() string {
	if e.token == "" {
		return e.srv.ClientURL()
	}
	u, err := url.Parse(e.srv.ClientURL())
	if err != nil {
		return e.srv.ClientURL()
	}
	u.User = url.User(e.token)
	return u.String()
}

// Addr is where clients connect, without credentials: what a log may show.
func (e *Server) Addr() string { return e.srv.ClientURL() }

// Shutdown stops the server.
func (e *Server) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// NodeOptions is one server of a NATS cluster run by ferry itself (the
// loopback cluster of make cluster, and the tests).
type NodeOptions struct {
	// Name is the server's name, unique in the cluster.
	Name string
	// Host and Port are where clients connect.
	Host string
	Port int
	// ClusterHost and ClusterPort are where the other servers connect.
	ClusterHost string
	ClusterPort int
	// Routes are the other servers' cluster addresses (nats://host:port).
	Routes []string
	// Dir is the JetStream store.
	Dir string
	// Cluster names the cluster; "ferry" if empty. Servers of clusters
	// with other names refuse each other's routes.
	Cluster string
}

// StartNode starts one JetStream server of a cluster, named "ferry" unless
// o.Cluster says otherwise.
func StartNode(o NodeOptions) (*Server, error) {
	opts := &server.Options{
		ServerName: o.Name,
		Host:       o.Host,
		Port:       o.Port,
		JetStream:  true,
		StoreDir:   o.Dir,
		NoSigs:     true,
		NoLog:      os.Getenv("FERRY_NATS_DEBUG") == "",
	}
	opts.Cluster.Name = cmp.Or(o.Cluster, "ferry")
	opts.Cluster.Host = o.ClusterHost
	opts.Cluster.Port = o.ClusterPort
	for _, r := range o.Routes {
		u, err := url.Parse(r)
		if err != nil {
			return nil, fmt.Errorf("nats node %s: route %q: %w", o.Name, r, err)
		}
		opts.Routes = append(opts.Routes, u)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats node %s: %w", o.Name, err)
	}
	if !opts.NoLog {
		srv.ConfigureLogger()
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats node %s: not ready after 10s", o.Name)
	}
	return &Server{srv: srv}, nil
}

// Name is the server's name.
func (e *Server) Name() string { return e.srv.Name() }
