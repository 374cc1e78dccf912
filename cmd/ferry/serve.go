package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-relay/ferry/api"
	"github.com/ferry-relay/ferry/apikeys"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/limits"
	"github.com/ferry-relay/ferry/sweeper"
	"github.com/ferry-relay/ferry/targetstate"
	"github.com/ferry-relay/ferry/worker"
)

// apiKeyCacheTTL is how long a checked API key is trusted without asking
// Postgres again: a revoked key works for at most this long.
const apiKeyCacheTTL = 10 * time.Second

// roles says which parts a process runs.
type roles struct{ api, worker bool }

func serveCommand(use, short string, r roles) *cobra.Command {
	var cfg config
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.validate(); err != nil {
				return err
			}
			return run(cmd.Context(), cfg, r)
		},
	}
	cfg.bind(cmd.Flags())
	return cmd
}

// run serves until ctx is canceled, then shuts down gracefully: the API
// stops accepting and finishes uploads in progress, workers finish or hand
// back their deliveries, and the queue connection is drained.
func run(ctx context.Context, cfg config, r roles) error {
	log := newLogger(cfg.LogFormat)
	s, err := openStack(ctx, cfg, log, r.api && r.worker)
	if err != nil {
		return err
	}
	defer s.close()

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	enq := jobs.NewEnqueuer(s.jobs, s.queue, log.With("component", "enqueue"))
	sw := sweeper.New(sweeper.Config{Retention: cfg.Retention}, sweeper.Deps{
		Jobs: s.jobs, Enqueue: enq, Objects: s.objects, Log: log.With("component", "sweeper")})
	swCtx, stopSweeper := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSweeper()
	wg.Go(func() { sw.Run(swCtx) })

	if r.worker {
		wcfg := worker.Config{ShutdownGrace: cfg.ShutdownGrace, Lease: cfg.Lease}.WithDefaults()
		wcfg.States = targetstate.NewStore(s.pool, wcfg.ID)
		// The holder is unique per run, so slots of a process that died
		// with the same id (a restarted container) are not renewed.
		wcfg.Limits = limits.New(s.pool, wcfg.ID+"/"+randomHex(), cfg.Lease)
		w := worker.New(wcfg, s.jobs, s.objects, s.queue, s.targets, log.With("component", "worker"))
		wg.Go(func() {
			if err := w.Run(ctx); err != nil {
				errs <- err
			}
		})
	}
	if r.api {
		srv := api.New(api.Config{MaxUploadBytes: cfg.MaxUploadBytes, BodyIdleTimeout: cfg.BodyIdleTimeout}, api.Deps{
			Jobs: s.jobs, Keys: apikeys.NewCache(s.keys, apiKeyCacheTTL), Objects: s.objects, Enqueue: enq, Targets: s.targets,
			States: targetstate.NewStore(s.pool, "api"), Slots: limits.New(s.pool, "api", 0),
			Ready: map[string]api.Pinger{"postgres": s.pool, "nats": s.queue, "s3": s.objects},
			Log:   log.With("component", "api"),
		})
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
		log.Info("API listening", "addr", "http://"+ln.Addr().String(), "targets", s.targets.Names())
		wg.Go(func() {
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		})
		wg.Go(func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
			defer cancel()
			_ = hs.Shutdown(sctx)
		})
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down", "grace", cfg.ShutdownGrace)
	case err := <-errs:
		return err
	}
	stopSweeper()
	wg.Wait()
	return nil
}

// randomHex returns 12 random hex digits.
func randomHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
