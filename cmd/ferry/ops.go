package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ferry-relay/ferry/api"
)

// opsHandler serves the endpoints of FERRY_METRICS_LISTEN: /metrics (behind
// FERRY_METRICS_KEY when set) and, for a process without the API (ferry
// worker, which has no other listener), /healthz and /readyz for its
// probes. /readyz answers only ok or down per dependency, like the API's.
func opsHandler(metricsKey string, ready map[string]api.Pinger, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", api.MetricsHandler(metricsKey))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeOpsJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		status, code := map[string]string{}, http.StatusOK
		for name, p := range ready {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			err := p.Ping(ctx)
			cancel()
			status[name] = "ok"
			if err != nil {
				log.Warn("not ready", "component", name, "err", err)
				status[name], code = "down", http.StatusServiceUnavailable
			}
		}
		writeOpsJSON(w, code, status)
	})
	return mux
}

func writeOpsJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// serveOps listens on cfg.MetricsListen and serves opsHandler there, with
// the process's readiness checks, until ctx ends.
func serveOps(ctx context.Context, wg *sync.WaitGroup, errs chan<- error, cfg config, ready map[string]api.Pinger, log *slog.Logger) error {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.MetricsListen)
	if err != nil {
		return fmt.Errorf("metrics listen: %w", err)
	}
	hs := &http.Server{Handler: opsHandler(cfg.MetricsKey, ready, log.With("component", "ops")),
		ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout}
	log.Info("metrics listening", "addr", "http://"+ln.Addr().String()+"/metrics")
	serveHTTP(ctx, wg, errs, hs, ln, config{ShutdownGrace: cfg.ShutdownGrace})
	return nil
}
