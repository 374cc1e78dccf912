package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferry-relay/ferry/api"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/enqueue"
	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/storage"
	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/targets/httptarget"
)

// uploadServer is the upload handler over HTTP on real Postgres, MinIO and
// NATS, with one target "t" (kind http, never reached: no worker runs).
type uploadServer struct {
	url     string
	key     string
	pool    *pgxpool.Pool
	objects *storage.Store
}

func newUploadServer(tb testing.TB, maxUploadBytes int64) uploadServer {
	tb.Helper()
	pool, _ := testenv.Postgres(tb)
	objects := testenv.Storage(tb)
	store := jobs.NewStore(pool)
	keys := apikeys.NewStore(pool)
	key, err := keys.Create(context.Background(), "uploads")
	if err != nil {
		tb.Fatal(err)
	}
	cfgs, err := targets.ParseFile(strings.NewReader("targets:\n  - {name: t, kind: http, url: \"http://127.0.0.1:1/\"}\n"),
		func(string) (string, bool) { return "", false })
	if err != nil {
		tb.Fatal(err)
	}
	set, err := targets.Build(cfgs, map[string]targets.Constructor{"http": httptarget.New})
	if err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := api.New(api.Config{MaxUploadBytes: maxUploadBytes}, api.Deps{Jobs: store, Keys: keys, Objects: objects,
		Enqueue: enqueue.New(store, testenv.Queue(tb), log), Targets: set, Log: log})
	ts := httptest.NewServer(srv.Handler())
	tb.Cleanup(ts.Close)
	return uploadServer{url: ts.URL, key: key, pool: pool, objects: objects}
}
