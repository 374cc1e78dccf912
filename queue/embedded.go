package queue

import (
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Embedded is a NATS server with JetStream running inside the process, for a
// single machine that should not need a NATS install.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a NATS server with JetStream storing under dir,
// listening on host:port (port -1 picks a free one).
func StartEmbedded(dir, host string, port int) (*Embedded, error) {
	srv, err := server.NewServer(&server.Options{
		ServerName: "ferry-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready after 10s")
	}
	return &Embedded{srv: srv}, nil
}

// URL is where clients connect.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Shutdown stops the server.
func (e *Embedded) Shutdown() {
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
}

// StartNode starts one JetStream server of a cluster named "ferry".
func StartNode(o NodeOptions) (*Embedded, error) {
	opts := &server.Options{
		ServerName: o.Name,
		Host:       o.Host,
		Port:       o.Port,
		JetStream:  true,
		StoreDir:   o.Dir,
		NoSigs:     true,
		NoLog:      os.Getenv("FERRY_NATS_DEBUG") == "",
	}
	opts.Cluster.Name = "ferry"
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
	return &Embedded{srv: srv}, nil
}

// Name is the server's name.
func (e *Embedded) Name() string { return e.srv.Name() }
