package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferry-relay/ferry/internal/fakes/sink"
	"github.com/ferry-relay/ferry/internal/natsserver"
	"github.com/ferry-relay/ferry/storage"
)

// The targets of a run, all on the in-process fake sink.
const (
	targetOK     = "sink"
	targetSlow   = "slow"
	targetRefuse = "refuse"
	// With Config.Versions: documents (http, versions: put) at the sink's
	// document paths, one of them slow (outageGate holds its answers).
	targetDocs     = "docs"
	targetDocsSlow = "docs-slow"
)

// cluster is everything a run starts: a private Postgres (or the one of
// Config.DatabaseURL), NATS (one server, or a cluster of Config.NATSNodes),
// an optional private MinIO (one directory, or an erasure set of
// Config.MinIODrives drives), the fake sink, and ferry's API processes and
// workers as separate processes.
type cluster struct {
	cfg  Config
	log  *slog.Logger
	dir  string
	host string // hostname, part of a worker's id

	pg        *postgres
	dbURL     string
	nats      []*process // nats[i] is the server named n<i+1> on a cluster
	natsAddrs []string
	// natsToken is the single embedded server's token ("" for a cluster).
	natsToken   string
	minio       *process
	minioDrives []string
	s3          storage.Config
	sink        *sink.Server
	sinkSrv     *http.Server
	sinkAddr    string
	outage      outageGate
	apis        []*process
	apiAddrs    []string
	workers     []*process
	db          *pgxpool.Pool
	apiKey      string

	mu   sync.Mutex
	gone map[*process]bool // killed for good: not restarted at the end
}

// topology describes the installation in one line.
func (c *cluster) topology() string {
	nats := "1 NATS server"
	if len(c.nats) > 1 {
		nats = fmt.Sprintf("%d NATS servers (stream R%d)", len(c.nats), max(c.cfg.QueueReplicas, 1))
	}
	minio := "the shared MinIO"
	switch {
	case len(c.minioDrives) > 1:
		minio = fmt.Sprintf("MinIO erasure set of %d drives", len(c.minioDrives))
	case c.minio != nil:
		minio = "a private MinIO"
	}
	api := "API"
	if c.cfg.Serve {
		api = "serve (API, workers, sweeper)"
	}
	return fmt.Sprintf("%s, %s, Postgres, %d %s and %d worker processes", nats, minio, len(c.apis), api, len(c.workers))
}

// natsURL is the comma-separated list of the NATS servers.
func (c *cluster) natsURL() string {
	urls := make([]string, len(c.natsAddrs))
	for i, a := range c.natsAddrs {
		urls[i] = "nats://" + a
		if c.natsToken != "" {
			urls[i] = "nats://" + c.natsToken + "@" + a
		}
	}
	return strings.Join(urls, ",")
}

// retire marks p as killed for good.
func (c *cluster) retire(p *process) {
	c.mu.Lock()
	c.gone[p] = true
	c.mu.Unlock()
}

// retired reports whether p was killed for good.
func (c *cluster) retired(p *process) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gone[p]
}

// freePort returns a loopback port that was free a moment ago, below the
// kernel's ephemeral range: a server the harness restarts must get its port
// back, which an outgoing connection may have taken if the port were
// ephemeral.
func freePort() (int, error) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 12000 {
				low = n
			}
		}
	}
	for range 100 {
		port := 10000 + rand.IntN(low-10000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		return port, nil
	}
	return 0, errors.New("no free loopback port below the ephemeral range")
}

// startCluster brings every component up and returns when the API is
// ready. On error, what was started is stopped.
func startCluster(ctx context.Context, cfg Config, log *slog.Logger) (c *cluster, err error) {
	c = &cluster{cfg: cfg, log: log, gone: map[*process]bool{}}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	c.host, _ = os.Hostname()
	if cfg.Dir != "" {
		c.dir = cfg.Dir
		if err := os.MkdirAll(c.dir, 0o755); err != nil {
			return nil, err
		}
	} else if c.dir, err = os.MkdirTemp("", "ferry-chaos-"); err != nil {
		return nil, err
	}
	log.Info("run directory (process logs)", "dir", c.dir)

	if c.dbURL = cfg.DatabaseURL; c.dbURL == "" {
		pgPort, err := freePort()
		if err != nil {
			return nil, err
		}
		if c.pg, err = startPostgres(ctx, pgPort, cfg.Dir); err != nil {
			return nil, fmt.Errorf("private postgres: %w", err)
		}
		c.dbURL = c.pg.URL()
	}
	if c.db, err = pgxpool.New(ctx, c.dbURL); err != nil {
		return nil, err
	}

	if err := c.startNATS(); err != nil {
		return nil, err
	}

	c.s3 = storage.Config{Endpoint: cfg.S3Endpoint, AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey,
		Bucket: fmt.Sprintf("ferry-chaos-%d-%d", cfg.Seed, time.Now().UnixNano()%1e9)}
	if cfg.MinIOBin != "" {
		if err := c.startMinIO(); err != nil {
			return nil, err
		}
	}
	if err := waitUntil(ctx, 60*time.Second, func() error {
		_, err := storage.Open(ctx, c.s3)
		return err
	}); err != nil {
		return nil, fmt.Errorf("minio at %s: %w\n%s", c.s3.Endpoint, err, tail(filepath.Join(c.dir, "minio.log"), 20))
	}

	if err := c.startSink(); err != nil {
		return nil, err
	}
	targetsPath := filepath.Join(c.dir, "targets.yaml")
	if err := os.WriteFile(targetsPath, []byte(c.targetsYAML()), 0o644); err != nil {
		return nil, err
	}

	env := c.ferryEnv(targetsPath)
	cmd := exec.CommandContext(ctx, cfg.FerryBin, "apikey", "create", "--name", "chaos")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("ferry apikey create: %w", err)
	}
	c.apiKey = strings.TrimSpace(string(out))

	for i := range max(cfg.APIs, 1) {
		apiPort, err := freePort()
		if err != nil {
			return nil, err
		}
		name := "api"
		if i > 0 {
			name = fmt.Sprintf("api%d", i+1)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", apiPort)
		role := "api"
		if cfg.Serve {
			role = "serve"
		}
		p := &process{name: name, path: cfg.FerryBin, args: []string{role},
			env: append(env, "FERRY_LISTEN="+addr), logPath: filepath.Join(c.dir, name+".log")}
		if err := p.start(); err != nil {
			return nil, err
		}
		c.apis, c.apiAddrs = append(c.apis, p), append(c.apiAddrs, addr)
	}
	for i := range cfg.Workers {
		name := fmt.Sprintf("worker%d", i+1)
		w := &process{name: name, path: cfg.FerryBin, args: []string{"worker"}, env: env,
			logPath: filepath.Join(c.dir, name+".log")}
		if err := w.start(); err != nil {
			return nil, err
		}
		c.workers = append(c.workers, w)
	}
	for i := range c.apis {
		if err := waitUntil(ctx, 90*time.Second, func() error { return c.apiReady(i) }); err != nil {
			return nil, fmt.Errorf("ferry API %s not ready: %w\n%s", c.apis[i].name, err, tail(c.apis[i].logPath, 20))
		}
	}
	return c, nil
}

// startNATS starts the NATS server, or the servers of a cluster, each a
// process the harness can kill.
func (c *cluster) startNATS() error {
	n := max(c.cfg.NATSNodes, 1)
	routes := make([]string, n)
	for i := range n {
		port, err := freePort()
		if err != nil {
			return err
		}
		c.natsAddrs = append(c.natsAddrs, fmt.Sprintf("127.0.0.1:%d", port))
		if n > 1 {
			rport, err := freePort()
			if err != nil {
				return err
			}
			routes[i] = fmt.Sprintf("127.0.0.1:%d", rport)
		}
	}
	for i := range n {
		name, dir, logPath := "nats", filepath.Join(c.dir, "nats"), filepath.Join(c.dir, "nats.log")
		var node *natsdNode
		if n > 1 {
			name = fmt.Sprintf("n%d", i+1)
			dir, logPath = filepath.Join(c.dir, "nats-"+name), filepath.Join(c.dir, "nats-"+name+".log")
			node = &natsdNode{name: name, cluster: routes[i]}
			for j, r := range routes {
				if j != i {
					node.routes = append(node.routes, "nats://"+r)
				}
			}
		}
		if node == nil {
			// A single server is ferry's embedded one: it wants its token.
			token, err := natsserver.Token(dir)
			if err != nil {
				return err
			}
			c.natsToken = token
		}
		p, err := natsdProcess(c.natsAddrs[i], dir, logPath, node)
		if err != nil {
			return err
		}
		p.name = name
		if err := p.start(); err != nil {
			return err
		}
		c.nats = append(c.nats, p)
	}
	return nil
}

// ferryEnv is the environment of ferry's processes: the caller's, without
// any FERRY_ variable, plus the run's.
func (c *cluster) ferryEnv(targetsPath string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FERRY_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"FERRY_DATABASE_URL="+c.dbURL,
		"FERRY_NATS_URL="+c.natsURL(),
		"FERRY_QUEUE_REPLICAS="+strconv.Itoa(max(c.cfg.QueueReplicas, 1)),
		"FERRY_S3_ENDPOINT="+c.s3.Endpoint,
		"FERRY_S3_ACCESS_KEY="+c.s3.AccessKey,
		"FERRY_S3_SECRET_KEY="+c.s3.SecretKey,
		"FERRY_S3_BUCKET="+c.s3.Bucket,
		"FERRY_TARGETS="+targetsPath,
		"FERRY_LEASE="+c.cfg.Lease.String(),
		"FERRY_ACK_WAIT="+c.cfg.AckWait.String(),
		"FERRY_SHUTDOWN_GRACE="+c.cfg.ShutdownGrace.String(),
		"FERRY_DATA_DIR="+filepath.Join(c.dir, "ferry-data"),
	)
}

// startMinIO runs a private MinIO on a free port, for MinIO restarts: over
// one directory, or as an erasure set over Config.MinIODrives directories
// (drives on one disk, which MINIO_CI_CD allows).
func (c *cluster) startMinIO() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	cport, err := freePort()
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	env := append(os.Environ(), "MINIO_ROOT_USER=minioadmin", "MINIO_ROOT_PASSWORD=minioadmin",
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	data := filepath.Join(c.dir, "minio")
	if n := c.cfg.MinIODrives; n > 1 {
		env = append(env, "MINIO_CI_CD=on")
		for i := range n {
			d := filepath.Join(c.dir, "minio", fmt.Sprintf("data%d", i+1))
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
			c.minioDrives = append(c.minioDrives, d)
		}
		data = filepath.Join(c.dir, "minio", fmt.Sprintf("data{1...%d}", n))
	}
	c.minio = &process{name: "minio", path: c.cfg.MinIOBin, env: env, logPath: filepath.Join(c.dir, "minio.log"),
		args: []string{"server", "--quiet", "--address", addr, "--console-address", fmt.Sprintf("127.0.0.1:%d", cport), data}}
	c.s3.Endpoint, c.s3.AccessKey, c.s3.SecretKey = addr, "minioadmin", "minioadmin"
	return c.minio.start()
}

// apiReady checks the /readyz of API process i.
func (c *cluster) apiReady(i int) error {
	resp, err := http.Get("http://" + c.apiAddrs[i] + "/readyz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz: HTTP %d", resp.StatusCode)
	}
	return nil
}

// apiServes checks that API process i accepts requests (/healthz),
// whatever its dependencies say.
func (c *cluster) apiServes(i int) error {
	resp, err := http.Get("http://" + c.apiAddrs[i] + "/healthz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz: HTTP %d", resp.StatusCode)
	}
	return nil
}

// processes returns every child process.
func (c *cluster) processes() []*process {
	ps := append(slices.Clone(c.apis), c.workers...)
	ps = append(ps, c.nats...)
	if c.minio != nil {
		ps = append(ps, c.minio)
	}
	return ps
}

// close stops everything and removes the run's state, unless the
// configuration keeps it.
func (c *cluster) close() {
	for _, p := range append(slices.Clone(c.apis), c.workers...) {
		_ = p.stop(c.cfg.ShutdownGrace + 10*time.Second)
	}
	if c.sinkSrv != nil {
		_ = c.sinkSrv.Close()
	}
	for _, p := range c.nats {
		_ = p.stop(10 * time.Second)
	}
	if c.db != nil {
		c.db.Close()
	}
	if c.pg != nil && c.cfg.KeepDir {
		c.pg.stop()
		c.log.Warn("keeping the Postgres cluster", "data", c.pg.data(),
			"start", fmt.Sprintf("%s %s/pg_ctl -D %s -o '-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s' start",
				strings.Join(c.pg.as, " "), c.pg.bin, c.pg.data(), c.pg.port, c.pg.dir))
	} else if c.pg != nil {
		c.pg.remove()
	}
	if c.s3.Bucket != "" {
		removeBucket(c.s3)
	}
	if c.minio != nil {
		_ = c.minio.stop(10 * time.Second)
	}
	if c.dir != "" && !c.cfg.KeepDir {
		os.RemoveAll(c.dir)
	}
}

// waitUntil calls f until it succeeds, ctx ends or d passes.
func waitUntil(ctx context.Context, d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
