package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-relay/ferry/api"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/audit"
	"github.com/ferry-relay/ferry/internal/backlog"
	"github.com/ferry-relay/ferry/internal/coord/election"
	"github.com/ferry-relay/ferry/internal/coord/limits"
	"github.com/ferry-relay/ferry/internal/coord/rates"
	"github.com/ferry-relay/ferry/internal/coord/targetstate"
	"github.com/ferry-relay/ferry/internal/enqueue"
	"github.com/ferry-relay/ferry/internal/tracing"
	"github.com/ferry-relay/ferry/sweeper"
	"github.com/ferry-relay/ferry/ui"
	"github.com/ferry-relay/ferry/worker"
)

// Server timeouts (see apiHTTPServer for the bodies').
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

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
	shutdownTracing, err := setupTracing(ctx, r, log)
	if err != nil {
		return err
	}
	// Last: the spans of the shutdown itself are flushed too.
	defer shutdownTracing()
	s, err := openStack(ctx, cfg, log, r.api && r.worker)
	if err != nil {
		return err
	}
	defer s.close()

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	enq := enqueue.New(s.jobs, s.queue, log.With("component", "enqueue"))
	targetRates := rates.NewStore(s.pool, rates.Config{})
	// One process of the installation scans the bucket and applies
	// retention; every process repairs jobs.
	elector := election.New(s.pool, 0, log.With("component", "election"))
	sw := sweeper.New(sweeper.Config{Retention: cfg.Retention, Leader: elector, RepublishAtStart: s.legacyStream}, sweeper.Deps{
		Jobs: s.jobs, Enqueue: enq, Stream: s.queue, Consumers: s.queue.NewConsumerCheck(), Objects: s.objects,
		Log: log.With("component", "sweeper")})
	swCtx, stopSweeper := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSweeper()
	wg.Go(func() { elector.Run(swCtx) })
	wg.Go(func() { sw.Run(swCtx) })
	sampler := backlog.New(backlog.Config{Targets: s.targets.Names()}, backlog.Deps{Queue: s.queue, Jobs: s.jobs,
		States: targetstate.NewStore(s.pool, "metrics"), Log: log.With("component", "backlog")})
	wg.Go(func() { sampler.Run(swCtx) })

	ready := map[string]api.Pinger{"postgres": s.pool, "nats": s.queue, "s3": s.objects, "queue_repair": sw}
	if r.worker {
		startWorker(ctx, &wg, errs, cfg, s, targetRates, ready, log)
	}
	if r.api {
		if err := startAPI(ctx, &wg, errs, cfg, s, enq, targetRates, ready, log); err != nil {
			return err
		}
	}
	if cfg.MetricsListen != "" {
		// ferry worker has no other listener: its probes come here too.
		if err := serveOps(ctx, &wg, errs, cfg, ready, log); err != nil {
			return err
		}
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down", "grace", cfg.ShutdownGrace)
	case err := <-errs:
		return err
	}
	stopSweeper()
	wg.Wait()
	// The last uploads' marks, so that the sweeper need not publish their
	// jobs again.
	fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	enq.Flush(fctx)
	return nil
}

// setupTracing exports traces when the OTEL_* variables ask for it
// (internal/tracing); the function it returns flushes them, within a few
// seconds.
func setupTracing(ctx context.Context, r roles, log *slog.Logger) (func(), error) {
	service := "ferry"
	switch {
	case r.api && !r.worker:
		service = "ferry-api"
	case r.worker && !r.api:
		service = "ferry-worker"
	}
	info, ok := debug.ReadBuildInfo()
	shutdown, err := tracing.Setup(ctx, service, readBuildFacts(info, ok).Version, os.Getenv, log.With("component", "tracing"))
	if err != nil {
		return nil, &settingsError{err}
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			log.Warn("flushing traces", "err", err)
		}
	}, nil
}

// startWorker runs the process's delivery workers until ctx ends; ready
// gains their state (down while storage does not answer).
func startWorker(ctx context.Context, wg *sync.WaitGroup, errs chan<- error, cfg config, s *stack,
	targetRates *rates.Store, ready map[string]api.Pinger, log *slog.Logger) {
	wcfg := worker.Config{ShutdownGrace: cfg.ShutdownGrace, Lease: cfg.Lease, Rates: targetRates}.WithDefaults()
	wcfg.States = targetstate.NewStore(s.pool, wcfg.ID)
	// The holder is unique per run, so slots of a process that died
	// with the same id (a restarted container) are not renewed.
	wcfg.Limits = limits.New(s.pool, wcfg.ID+"/"+randomHex(), cfg.Lease)
	w := worker.New(wcfg, s.jobs, s.objects, s.queue, s.targets, log.With("component", "worker"))
	ready["deliveries"] = w // down while storage does not answer its reads
	wg.Go(func() {
		if err := w.Run(ctx); err != nil {
			errs <- err
		}
	})
}

// startAPI serves the API and the dashboard on cfg.Listen until ctx ends.
func startAPI(ctx context.Context, wg *sync.WaitGroup, errs chan<- error, cfg config, s *stack,
	enq *enqueue.Enqueuer, targetRates *rates.Store, ready map[string]api.Pinger, log *slog.Logger) error {
	srv := api.New(apiConfig(cfg), api.Deps{
		Jobs: s.jobs, Keys: ui.Keys(apikeys.NewCache(s.keys, apikeys.CacheTTLDefault)), KeyAdmin: s.keys,
		Audit: audit.NewStore(s.pool), Objects: s.objects, Enqueue: enq, Targets: s.targets, Rates: targetRates,
		States: targetstate.NewStore(s.pool, "api"), Slots: limits.New(s.pool, "api", 0),
		Ready: ready,
		Log:   log.With("component", "api"),
	})
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	handler, err := withDashboard(srv.Handler(), s.pool, log.With("component", "ui"))
	if err != nil {
		return err
	}
	hs := apiHTTPServer(handler, cfg)
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	log.Info("API listening", "addr", scheme+"://"+ln.Addr().String(), "dashboard", scheme+"://"+ln.Addr().String()+"/ui/", "targets", s.targets.Names())
	serveHTTP(ctx, wg, errs, hs, ln, cfg)
	return nil
}

// apiConfig is the API's configuration from the process's.
func apiConfig(cfg config) api.Config {
	c := api.Config{MaxUploadBytes: cfg.MaxUploadBytes, BodyIdleTimeout: cfg.BodyIdleTimeout,
		RateLimit: cfg.RateLimit, MetricsKey: cfg.MetricsKey, NoMetrics: cfg.MetricsListen != "",
		MaxConcurrentUploads: cfg.MaxConcurrentUploads, ReportWriteTimeout: cfg.ReportWriteTimeout,
		AuthFailureLimit: cfg.AuthFailureLimit,
		UploadLimits: api.UploadLimits{MaxUploadsPerKey: cfg.MaxUploadsPerKey,
			MinUploadRate: cfg.MinUploadRate, MinUploadRateWindow: cfg.MinUploadRateWindow}}
	// Here 0 turns a limit off; to the API it means its default.
	if c.AuthFailureLimit == 0 {
		c.AuthFailureLimit = -1
	}
	if c.MinUploadRate == 0 {
		c.MinUploadRate = -1
	}
	return c
}

// apiHTTPServer is the HTTP server of the API and the dashboard. Uploads
// may take hours, so it has no overall read or write timeout: the body of
// any other request has its own deadline (FERRY_BODY_READ_TIMEOUT), an
// upload's body is cut when idle or too slow (api), a stalled report
// reader by the report's write deadline.
func apiHTTPServer(handler http.Handler, cfg config) *http.Server {
	return &http.Server{Handler: api.WithBodyDeadline(handler, cfg.BodyReadTimeout),
		ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
}

// randomHex returns 12 random hex digits.
func randomHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// serveHTTP serves hs on ln (over TLS when cfg names a certificate) until
// ctx ends, then shuts it down within the grace.
func serveHTTP(ctx context.Context, wg *sync.WaitGroup, errs chan<- error, hs *http.Server, ln net.Listener, cfg config) {
	wg.Go(func() {
		var err error
		if cfg.TLSCert != "" {
			err = hs.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
		} else {
			err = hs.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case errs <- err:
			default:
			}
		}
	})
	wg.Go(func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
		defer cancel()
		_ = hs.Shutdown(sctx)
	})
}
