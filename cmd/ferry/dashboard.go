package main

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferry-relay/ferry/ui"
	"github.com/ferry-relay/ferry/ui/sessions"
)

// withDashboard serves the web dashboard at /ui/ beside the API, which it
// speaks to in process. Its sessions are in Postgres, shared by every
// process; the API must check keys through ui.Keys.
func withDashboard(apiHandler http.Handler, pool *pgxpool.Pool, log *slog.Logger) (http.Handler, error) {
	d, err := ui.New(ui.Config{}, apiHandler, sessions.NewStore(pool, sessions.Config{}), log)
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ui/", d.Handler())
	mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	mux.Handle("/", apiHandler)
	return mux, nil
}
