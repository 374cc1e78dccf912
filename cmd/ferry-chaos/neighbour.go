package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferry-relay/ferry/internal/fakes/sink"
)

// neighbour is a second ferry installation sharing the run's NATS server:
// its own database (a schema of the run's Postgres), bucket, data
// directory, target sink and one ferry serve process, with targets of the
// same names as the run's. It must neither take the run's jobs nor lose
// its own (issue 20: before, both used one stream and one consumer per
// target name, and each dropped about half of the other's messages).
type neighbour struct {
	c       *cluster
	proc    *process
	db      *pgxpool.Pool
	sink    *sink.Server
	sinkSrv *http.Server
	up      *uploader
	files   []file
}

// startNeighbour brings the second installation up and waits for its API.
func startNeighbour(ctx context.Context, c *cluster) (n *neighbour, err error) {
	n = &neighbour{c: c}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	if _, err := c.db.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS neighbour"); err != nil {
		return nil, fmt.Errorf("neighbour schema: %w", err)
	}
	u, err := url.Parse(c.dbURL)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("search_path", "neighbour")
	u.RawQuery = q.Encode()
	dbURL := u.String()
	if n.db, err = pgxpool.New(ctx, dbURL); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n.sink = sink.New(sink.Options{})
	n.sinkSrv = &http.Server{Handler: n.sink, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = n.sinkSrv.Serve(ln) }()
	var targets strings.Builder
	targets.WriteString("targets:\n")
	for _, name := range []string{targetOK, targetSlow, targetRefuse} {
		fmt.Fprintf(&targets, "  - {name: %s, kind: http, url: \"http://%s/ok/\", method: POST, body: raw, concurrency: 4}\n", name, ln.Addr())
	}
	dir := filepath.Join(c.dir, "neighbour")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	targetsPath := filepath.Join(dir, "targets.yaml")
	if err := os.WriteFile(targetsPath, []byte(targets.String()), 0o644); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	env := append(c.ferryEnv(targetsPath), "FERRY_DATABASE_URL="+dbURL, "FERRY_S3_BUCKET="+c.s3.Bucket+"-nb",
		"FERRY_DATA_DIR="+filepath.Join(dir, "data"), "FERRY_LISTEN="+addr)
	cmd := exec.CommandContext(ctx, c.cfg.FerryBin, "apikey", "create", "--name", "neighbour")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("neighbour: ferry apikey create: %w", err)
	}
	n.proc = &process{name: "neighbour", path: c.cfg.FerryBin, args: []string{"serve"}, env: env,
		logPath: filepath.Join(c.dir, "neighbour.log")}
	if err := n.proc.start(); err != nil {
		return nil, err
	}
	n.up = newUploader([]string{"http://" + addr}, strings.TrimSpace(string(out)), c.cfg.Seed+1)
	if err := waitUntil(ctx, 90*time.Second, func() error {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("neighbour not ready: %w\n%s", err, tail(n.proc.logPath, 20))
	}
	return n, nil
}

// upload sends count small files to the neighbour's targetOK over spread.
func (n *neighbour) upload(ctx context.Context, count int, spread time.Duration) {
	n.files = makeFiles(count, 16<<10, n.c.cfg.Seed+1, 0, 0, 0)
	n.up.run(ctx, n.files, 2, spread)
}

// check waits up to settle for the neighbour's jobs to end, and reports
// them in one line, with a problem for each job lost or stuck.
func (n *neighbour) check(ctx context.Context, settle time.Duration) (line string, problems []string) {
	open := 0
	_ = waitUntil(ctx, settle, func() error {
		if err := n.db.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE status NOT IN ('SUCCESS', 'FAILED', 'CANCELED')`).Scan(&open); err != nil {
			return err
		}
		if open > 0 {
			return fmt.Errorf("%d jobs open", open)
		}
		return nil
	})
	var success int
	if err := n.db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'SUCCESS'),
			count(*) FILTER (WHERE status NOT IN ('SUCCESS', 'FAILED', 'CANCELED')) FROM jobs`).Scan(&success, &open); err != nil {
		return "", []string{"neighbour: " + err.Error()}
	}
	got := map[string]bool{}
	for _, d := range n.sink.Documents() {
		got[d.JobID] = true
	}
	lost := 0
	for _, a := range n.up.results {
		if !got[a.jobID] {
			lost++
		}
	}
	if lost > 0 {
		problems = append(problems, fmt.Sprintf("second installation: %d of %d accepted files never reached its target", lost, len(n.up.results)))
	}
	if open > 0 {
		problems = append(problems, fmt.Sprintf("second installation: %d jobs stuck", open))
	}
	return fmt.Sprintf("%d files accepted, %d jobs SUCCESS, %d lost, %d stuck", len(n.up.results), success, lost, open), problems
}

func (n *neighbour) close() {
	if n.proc != nil {
		_ = n.proc.stop(10 * time.Second)
	}
	if n.sinkSrv != nil {
		_ = n.sinkSrv.Close()
	}
	if n.db != nil {
		n.db.Close()
	}
	nb := n.c.s3
	nb.Bucket += "-nb"
	removeBucket(nb)
}
