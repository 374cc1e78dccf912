package main

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/ferry-relay/ferry/ui"
)

// withDashboard serves the web dashboard at /ui/ beside the API, which it
// speaks to in process.
func withDashboard(apiHandler http.Handler, log *slog.Logger) (http.Handler, error) {
	d, err := ui.New(ui.Config{}, apiHandler, log)
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ui/", d.Handler())
	mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	mux.Handle("/", apiHandler)
	return mux, nil
}
