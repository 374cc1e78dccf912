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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferry-relay/ferry/fakes/sink"
	"github.com/ferry-relay/ferry/storage"
)

// The targets of a run, all on the in-process fake sink.
const (
	targetOK     = "sink"
	targetSlow   = "slow"
	targetRefuse = "refuse"
)

// cluster is everything a run starts: a private Postgres, a NATS server, an
// optional private MinIO, the fake sink, and ferry's API and workers as
// separate processes.
type cluster struct {
	cfg  Config
	log  *slog.Logger
	dir  string
	host string // hostname, part of a worker's id

	pg       *postgres
	nats     *process
	natsAddr string
	minio    *process
	s3       storage.Config
	sink     *sink.Server
	sinkSrv  *http.Server
	sinkAddr string
	outage   outageGate
	api      *process
	apiAddr  string
	workers  []*process
	db       *pgxpool.Pool
	apiKey   string
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
	c = &cluster{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	c.host, _ = os.Hostname()
	if c.dir, err = os.MkdirTemp("", "ferry-chaos-"); err != nil {
		return nil, err
	}
	log.Info("run directory (process logs)", "dir", c.dir)

	pgPort, err := freePort()
	if err != nil {
		return nil, err
	}
	if c.pg, err = startPostgres(ctx, pgPort); err != nil {
		return nil, fmt.Errorf("private postgres: %w", err)
	}
	if c.db, err = pgxpool.New(ctx, c.pg.URL()); err != nil {
		return nil, err
	}

	natsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	c.natsAddr = fmt.Sprintf("127.0.0.1:%d", natsPort)
	if c.nats, err = natsdProcess(c.natsAddr, filepath.Join(c.dir, "nats"), filepath.Join(c.dir, "nats.log")); err != nil {
		return nil, err
	}
	if err := c.nats.start(); err != nil {
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
		return nil, fmt.Errorf("minio at %s: %w", c.s3.Endpoint, err)
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

	apiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	c.apiAddr = fmt.Sprintf("127.0.0.1:%d", apiPort)
	c.api = &process{name: "api", path: cfg.FerryBin, args: []string{"api"},
		env: append(env, "FERRY_LISTEN="+c.apiAddr), logPath: filepath.Join(c.dir, "api.log")}
	if err := c.api.start(); err != nil {
		return nil, err
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
	if err := waitUntil(ctx, 60*time.Second, c.apiReady); err != nil {
		return nil, fmt.Errorf("ferry API not ready: %w\n%s", err, tail(c.api.logPath, 20))
	}
	return c, nil
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
		"FERRY_DATABASE_URL="+c.pg.URL(),
		"FERRY_NATS_URL=nats://"+c.natsAddr,
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

// targetsYAML configures three targets on the sink: one that accepts (with
// the sink's random failures), one that answers slowly (deliveries in
// flight when a worker is stopped) and one that refuses every file.
func (c *cluster) targetsYAML() string {
	var b strings.Builder
	b.WriteString("targets:\n")
	for _, t := range []struct {
		name, path  string
		concurrency int
	}{{targetOK, "/ok/", 8}, {targetSlow, "/slow/", 4}, {targetRefuse, "/refuse/", 2}} {
		fmt.Fprintf(&b, "  - name: %s\n    kind: http\n    url: http://%s%s\n    method: POST\n    body: raw\n"+
			"    concurrency: %d\n    max_attempts: %d\n    timeout: 30s\n    backoff: {initial: 200ms, max: 2s}\n",
			t.name, c.sinkAddr, t.path, t.concurrency, c.cfg.MaxAttempts)
	}
	return b.String()
}

func (c *cluster) startSink() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	c.sink = sink.New(sink.Options{FailRate: c.cfg.FailRate, SlowDelay: c.cfg.SlowDelay})
	c.sinkAddr = ln.Addr().String()
	c.sinkSrv = &http.Server{Handler: &c.outage, ReadHeaderTimeout: 10 * time.Second}
	c.outage.next = c.sink
	go func() { _ = c.sinkSrv.Serve(ln) }()
	return nil
}

// outageGate puts the target down for a while: every upload is answered
// 503 until the outage ends. The sink's own Fail counts requests, which a
// circuit breaker spaces out, so an outage measured in requests would last
// as long as the breaker's pauses allow; a real one lasts a time.
type outageGate struct {
	next  http.Handler
	mu    sync.Mutex
	until time.Time
}

// down starts an outage of d.
func (g *outageGate) down(d time.Duration) {
	g.mu.Lock()
	g.until = time.Now().Add(d)
	g.mu.Unlock()
}

func (g *outageGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	down := time.Now().Before(g.until)
	g.mu.Unlock()
	if down && !strings.HasPrefix(r.URL.Path, "/_fake/") {
		http.Error(w, `{"error":"target down"}`, http.StatusServiceUnavailable)
		return
	}
	g.next.ServeHTTP(w, r)
}

// startMinIO runs a private MinIO on a free port, for MinIO restarts.
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
	c.minio = &process{name: "minio", path: c.cfg.MinIOBin, env: env, logPath: filepath.Join(c.dir, "minio.log"),
		args: []string{"server", "--quiet", "--address", addr, "--console-address", fmt.Sprintf("127.0.0.1:%d", cport),
			filepath.Join(c.dir, "minio")}}
	c.s3.Endpoint, c.s3.AccessKey, c.s3.SecretKey = addr, "minioadmin", "minioadmin"
	return c.minio.start()
}

// apiReady checks the API's /readyz.
func (c *cluster) apiReady() error {
	resp, err := http.Get("http://" + c.apiAddr + "/readyz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz: HTTP %d", resp.StatusCode)
	}
	return nil
}

// apiServes checks that the API accepts requests (/healthz), whatever its
// dependencies say.
func (c *cluster) apiServes() error {
	resp, err := http.Get("http://" + c.apiAddr + "/healthz")
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
	ps := append([]*process{c.api}, c.workers...)
	if c.nats != nil {
		ps = append(ps, c.nats)
	}
	if c.minio != nil {
		ps = append(ps, c.minio)
	}
	return ps
}

// close stops everything and removes the run's state, unless the
// configuration keeps it.
func (c *cluster) close() {
	for _, p := range append([]*process{c.api}, c.workers...) {
		if p != nil {
			_ = p.stop(c.cfg.ShutdownGrace + 10*time.Second)
		}
	}
	if c.sinkSrv != nil {
		_ = c.sinkSrv.Close()
	}
	if c.nats != nil {
		_ = c.nats.stop(10 * time.Second)
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
