package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// postgres is a private PostgreSQL cluster in a temporary directory, on a
// loopback port of its own, so that the harness can crash and restart it
// without touching the machine's shared server.
type postgres struct {
	bin  string // directory of initdb and pg_ctl
	dir  string // holds data/, the socket and the log
	port int
	// as runs a command as the cluster's owner: root may not run
	// PostgreSQL, so as root the cluster belongs to the postgres user.
	as []string
}

// pgBinDir finds initdb and pg_ctl: $FERRY_CHAOS_PG_BIN, the PATH, or the
// newest /usr/lib/postgresql/*/bin (Debian keeps them off the PATH).
func pgBinDir() (string, error) {
	if d := os.Getenv("FERRY_CHAOS_PG_BIN"); d != "" {
		return d, nil
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return cmp.Compare(va, vb)
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", fmt.Errorf("initdb and pg_ctl not found: install PostgreSQL or set FERRY_CHAOS_PG_BIN")
}

// startPostgres creates and starts a private cluster in a new directory
// under parent (the system's temporary directory if empty).
func startPostgres(ctx context.Context, port int, parent string) (*postgres, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(parent, "ferry-chaos-pg-")
	if err != nil {
		return nil, err
	}
	p := &postgres{bin: bin, dir: dir, port: port}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root, a private PostgreSQL needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root, a private PostgreSQL needs runuser: %w", err)
		}
		p.as = []string{runuser, "-u", "postgres", "--"}
	}
	if err := p.run(ctx, "initdb", "-D", p.data(), "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := p.start(ctx); err != nil {
		p.remove()
		return nil, err
	}
	return p, nil
}

func (p *postgres) data() string { return filepath.Join(p.dir, "data") }

// URL is the connection string of the cluster's postgres database.
func (p *postgres) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

func (p *postgres) run(ctx context.Context, tool string, args ...string) error {
	argv := append(append(slices.Clone(p.as), filepath.Join(p.bin, tool)), args...)
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", tool, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// start starts the cluster and waits until it accepts connections. Data
// survives a crash of the server process, not of the machine: fsync is
// off to spare the shared disk, which a process crash does not need.
func (p *postgres) start(ctx context.Context) error {
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s "+
		"-c max_connections=200 -c fsync=off -c full_page_writes=off", p.port, p.dir)
	return p.run(ctx, "pg_ctl", "-D", p.data(), "-l", filepath.Join(p.dir, "postgres.log"),
		"-o", opts, "-w", "-t", "60", "start")
}

// crash stops the server the way a crash would: immediate mode sends
// SIGQUIT, every backend exits at once without a checkpoint, and the next
// start replays the WAL.
func (p *postgres) crash(ctx context.Context) error {
	return p.run(ctx, "pg_ctl", "-D", p.data(), "-m", "immediate", "-w", "stop")
}

// stop stops the cluster if it runs.
func (p *postgres) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = p.run(ctx, "pg_ctl", "-D", p.data(), "-m", "fast", "-w", "stop")
}

// remove stops the cluster if it runs and deletes its files.
func (p *postgres) remove() {
	p.stop()
	os.RemoveAll(p.dir)
}
