package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/installation"
	"github.com/ferry-relay/ferry/internal/natsserver"
	"github.com/ferry-relay/ferry/internal/tracing"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/migrations"
	"github.com/ferry-relay/ferry/queue"
	"github.com/ferry-relay/ferry/storage"
	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/targets/kinds"
)

// stack is the set of components a ferry process stands on.
type stack struct {
	cfg      config
	log      *slog.Logger
	pool     *pgxpool.Pool
	jobs     *jobs.Store
	keys     *apikeys.Store
	objects  *storage.Store
	queue    *queue.Queue
	embedded *natsserver.Server
	targets  targets.Set
	// legacyStream: the stream of a ferry before installations was there
	// at start.
	legacyStream bool
}

// openDB connects to Postgres, waiting for it to come up, and migrates.
func openDB(ctx context.Context, cfg config, log *slog.Logger) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, errors.New("database url: invalid")
	}
	// 20 by default (pgx's is 4 per core: too few for the API's uploads
	// and the workers' slots); a pool_max_conns in the URL is taken as
	// given, so that many processes fit in Postgres's max_connections.
	if !strings.Contains(cfg.DatabaseURL, "pool_max_conns") {
		pcfg.MaxConns = max(pcfg.MaxConns, 20)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := waitFor(ctx, log, "postgres", pool.Ping); err != nil {
		pool.Close()
		return nil, err
	}
	if !cfg.NoMigrate {
		if err := migrations.Up(withoutPoolSettings(cfg.DatabaseURL)); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return pool, nil
}

// withoutPoolSettings drops pgxpool's own settings (pool_max_conns, ...)
// from a postgres:// URL: the migrations' driver would send them to the
// server as run-time parameters, which it refuses.
func withoutPoolSettings(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil || !strings.Contains(u.RawQuery, "pool_") {
		return dbURL
	}
	q := u.Query()
	for k := range q {
		if strings.HasPrefix(k, "pool_") {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// openStack brings up what a serving process needs. With embed, a NATS
// server runs in the process when no NATS URL is configured.
func openStack(ctx context.Context, cfg config, log *slog.Logger, embed bool) (*stack, error) {
	s := &stack{cfg: cfg, log: log}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	var err error
	if s.targets, err = loadTargets(cfg.TargetsFile); err != nil {
		return nil, err
	}
	if s.pool, err = openDB(ctx, cfg, log); err != nil {
		return nil, err
	}
	s.jobs, s.keys = jobs.NewStore(s.pool), apikeys.NewStore(s.pool)
	scfg := storage.Config{Endpoint: cfg.S3Endpoint, AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey, Bucket: cfg.S3Bucket}
	if embed {
		// One process receives and delivers: what it just stored, its
		// workers can take from memory.
		scfg.RecentBytes = cfg.RecentFilesBytes
	}
	err = waitFor(ctx, log, "object storage", func(ctx context.Context) error {
		s.objects, err = storage.Open(ctx, scfg)
		return err
	})
	if err != nil {
		return nil, err
	}
	natsURL := cfg.NATSURL
	if natsURL == "" && embed {
		dir := filepath.Join(cfg.DataDir, "nats")
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		if s.embedded, err = natsserver.Start(dir, "127.0.0.1", -1); err != nil {
			return nil, err
		}
		natsURL = s.embedded.URL()
		log.Info("embedded NATS server started (clients need its token, kept in the store)", "addr", s.embedded.Addr(), "store", dir)
	} else if natsURL == "" {
		natsURL = natsURLDefault
	}
	if err := s.openQueue(ctx, natsURL); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// openQueue connects to the installation's jobs stream. It refuses a
// stream that another installation owns.
func (s *stack) openQueue(ctx context.Context, natsURL string) error {
	id, err := installation.ID(ctx, s.pool)
	if err != nil {
		return err
	}
	if s.queue, err = queue.Connect(natsURL, "ferry"); err != nil {
		return err
	}
	if err := s.queue.SetInstallation(id); err != nil {
		return err
	}
	s.queue.SetAckWait(s.cfg.AckWait)
	s.queue.SetReplicas(s.cfg.QueueReplicas)
	log := s.log.With("component", "queue")
	go s.queue.WatchStream(ctx, log, 10*time.Second)
	// NATS being down must not stop the API from accepting uploads (the
	// sweeper publishes them later) nor a worker from starting (it waits
	// for its consumers): make sure of the stream in the background.
	err = errors.New("not connected")
	if s.queue.Connected() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = s.queue.EnsureStream(sctx)
		cancel()
	}
	if foreign := (*queue.ForeignStreamError)(nil); errors.As(err, &foreign) {
		return err
	}
	if err != nil {
		log.Warn("NATS JetStream not reachable yet; uploads are accepted and published when it is", "err", err)
		go func() { _ = waitFor(ctx, log, "nats jetstream", s.queue.EnsureStream) }()
		return nil
	}
	log.Info("jobs stream", "stream", s.queue.StreamName(), "installation", id)
	s.noteLegacyStream(ctx, log)
	return nil
}

// noteLegacyStream says, once at start, that the stream of ferry before
// installations still exists: this installation's waiting jobs are
// republished from Postgres into its own stream at each start while it
// does (sweeper.Config.RepublishAtStart), so the old one only holds copies
// (or another, older installation's jobs).
func (s *stack) noteLegacyStream(ctx context.Context, log *slog.Logger) {
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if n, found, err := s.queue.LegacyStream(lctx); err == nil && found {
		s.legacyStream = true
		log.Warn("the jobs stream of ferry before installation ids still exists and is no longer used by this installation; "+
			"delete it once no older ferry uses this NATS (nats stream rm "+queue.LegacyStreamName+")", "messages", n)
	}
}

func (s *stack) close() {
	if s.queue != nil {
		s.queue.Close()
	}
	if s.embedded != nil {
		s.embedded.Shutdown()
	}
	if s.pool != nil {
		s.pool.Close()
	}
}

// waitFor calls f until it succeeds or ctx ends, so that a process started
// before its dependencies waits for them instead of failing.
func waitFor(ctx context.Context, log *slog.Logger, what string, f func(context.Context) error) error {
	delay := 200 * time.Millisecond
	warned := false
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := f(actx)
		cancel()
		if err == nil {
			if warned {
				log.Info(what + " is up")
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if !warned {
			log.Warn("waiting for "+what, "err", err)
			warned = true
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w", what, err)
		case <-t.C:
		}
		delay = min(2*delay, 5*time.Second)
	}
}

func loadTargets(path string) (targets.Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("targets file: %w (set FERRY_TARGETS or --targets)", err)
	}
	defer f.Close()
	cfgs, err := targets.ParseFile(f, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	return targets.Build(cfgs, kinds.All)
}

func newLogger(format string) *slog.Logger {
	var h slog.Handler = slog.NewTextHandler(os.Stderr, nil)
	if format == "json" {
		h = slog.NewJSONHandler(os.Stderr, nil)
	}
	// A line logged within a span carries its trace_id.
	return slog.New(tracing.NewLogHandler(h))
}
