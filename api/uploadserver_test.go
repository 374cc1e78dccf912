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
	"github.com/ferry-relay/ferry/targets/blueworks"
	"github.com/ferry-relay/ferry/targets/httptarget"
)

// uploadServer is the upload handler over HTTP on real Postgres, MinIO and
// NATS, with one target "t" (kind http, never reached: no worker runs).
type uploadServer struct {
	url     string
	key     string
	pool    *pgxpool.Pool
	dbURL   string
	objects *storage.Store
}

// serverOptions change what newUploadServer builds.
type serverOptions struct {
	// targets is the targets file; one http target "t" when empty.
	targets string
	// jobsPool, when it returns a pool, is the job store's (the keys stay
	// on the test's own): a store that can be made unreachable.
	jobsPool func(tb testing.TB, dbURL string) *pgxpool.Pool
}

const oneTarget = "targets:\n  - {name: t, kind: http, url: \"http://127.0.0.1:1/\"}\n"

func newUploadServer(tb testing.TB, maxUploadBytes int64, opts ...func(*serverOptions)) uploadServer {
	tb.Helper()
	o := serverOptions{targets: oneTarget}
	for _, opt := range opts {
		opt(&o)
	}
	pool, dbURL := testenv.Postgres(tb)
	objects := testenv.Storage(tb)
	jobsPool := pool
	if o.jobsPool != nil {
		jobsPool = o.jobsPool(tb, dbURL)
	}
	store := jobs.NewStore(jobsPool)
	keys := apikeys.NewStore(pool)
	key, err := keys.Create(context.Background(), "uploads")
	if err != nil {
		tb.Fatal(err)
	}
	cfgs, err := targets.ParseFile(strings.NewReader(o.targets), func(string) (string, bool) { return "", false })
	if err != nil {
		tb.Fatal(err)
	}
	set, err := targets.Build(cfgs, map[string]targets.Constructor{"http": httptarget.New, "blueworks": blueworks.New})
	if err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := api.New(api.Config{MaxUploadBytes: maxUploadBytes}, api.Deps{Jobs: store, Keys: keys, Objects: objects,
		Enqueue: enqueue.New(store, testenv.Queue(tb), log), Targets: set, Log: log})
	ts := httptest.NewServer(srv.Handler())
	tb.Cleanup(ts.Close)
	return uploadServer{url: ts.URL, key: key, pool: pool, dbURL: dbURL, objects: objects}
}

// deadStore gives the job store a pool to a port nothing listens on:
// every statement fails to connect, as when Postgres is down.
func deadStore(o *serverOptions) {
	o.jobsPool = func(tb testing.TB, _ string) *pgxpool.Pool {
		p, err := pgxpool.New(context.Background(), "postgres://postgres:postgres@127.0.0.1:1/ferry?sslmode=disable&connect_timeout=2")
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(p.Close)
		return p
	}
}

// ownStore gives the job store a pool of its own on the test's schema and
// hands it to the test, which may close it to cut the store off midway.
func ownStore(pool **pgxpool.Pool) func(*serverOptions) {
	return func(o *serverOptions) {
		o.jobsPool = func(tb testing.TB, dbURL string) *pgxpool.Pool {
			p, err := pgxpool.New(context.Background(), dbURL)
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(p.Close)
			*pool = p
			return p
		}
	}
}
