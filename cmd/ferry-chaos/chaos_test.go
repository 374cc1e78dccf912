package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if natsdRole() {
		return
	}
	os.Exit(m.Run())
}

// TestChaosShort is make chaos in small: 150 files (or 60 documents in 3
// versions each) through a real ferry
// (an API process, or ferry serve, and two worker processes, a NATS
// server, a private PostgreSQL cluster, the shared MinIO) while a fixed script kills workers, the API
// (once while NATS is down) and NATS, crashes Postgres, stops a worker
// gracefully mid-delivery and takes the target down. Nothing accepted may
// be lost or stuck, and the target may get at most one extra copy per
// delivery a kill or a shutdown cut short.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: about a minute per mode")
	}
	bin := filepath.Join(t.TempDir(), "ferry")
	bctx, bcancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer bcancel()
	if err := buildFerry(bctx, bin); err != nil {
		t.Fatal(err)
	}
	// The API processes as ferry api, then as ferry serve (which also
	// delivers, from its recent-files memory, and dies with its
	// deliveries in flight when the API is killed).
	// Then documents (issue 21): every file sent in three versions.
	for _, mode := range []struct {
		name     string
		serve    bool
		versions int
	}{{"api", false, 0}, {"serve", true, 0}, {"versions", false, 3}} {
		t.Run(mode.name, func(t *testing.T) { chaosShort(t, bin, mode.serve, mode.versions) })
	}
	t.Run("neighbour-purge", func(t *testing.T) { chaosQueueShort(t, bin) })
}

func chaosShort(t *testing.T, bin string, serve bool, versions int) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := defaultConfig()
	cfg.FerryBin = bin
	cfg.Serve = serve
	cfg.Files = 150
	cfg.UploadFor = 20 * time.Second
	cfg.Uploaders = 6
	cfg.Seed = 42
	uploads := cfg.Files
	if versions > 1 {
		// 60 documents, 180 versions: about as many uploads as the others.
		cfg.Versions, cfg.Files = versions, 60
		uploads = cfg.Files * versions
	}
	cfg.SlowShare = 0.1
	cfg.Settle = 45 * time.Second
	cfg.Script = []fault{
		{At: 2 * time.Second, Kind: faultWorkerKill, Worker: 0, Down: 500 * time.Millisecond},
		// The API restarts while NATS is down: it must serve (uploads are
		// accepted meanwhile and published once NATS is back).
		{At: 6 * time.Second, Kind: faultNATSKill, Down: 3 * time.Second},
		{At: 6500 * time.Millisecond, Kind: faultAPIKill, Down: 200 * time.Millisecond, ServeWithin: 2 * time.Second},
		{At: 10 * time.Second, Kind: faultPostgresCrash, Down: 1500 * time.Millisecond},
		{At: 12 * time.Second, Kind: faultWorkerTerm, Worker: 1, Down: 300 * time.Millisecond},
		{At: 15 * time.Second, Kind: faultWorkerKill, Worker: 1, Down: 500 * time.Millisecond},
		{At: 16 * time.Second, Kind: faultTargetOutage, Down: 3 * time.Second},
		{At: 17 * time.Second, Kind: faultAPIKill, Down: 300 * time.Millisecond},
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	rep, err := run(ctx, cfg, log)
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	var out bytes.Buffer
	rep.Print(&out)
	t.Log("\n" + out.String())
	if len(rep.Problems) > 0 {
		t.Errorf("chaos run broke promises; harness log:\n%s", logs.String())
	}
	// The script's faults all happened.
	for _, k := range []faultKind{faultWorkerKill, faultAPIKill, faultNATSKill, faultPostgresCrash, faultWorkerTerm} {
		if rep.Faults[k] == 0 {
			t.Errorf("no %s was injected", k)
		}
	}
	if rep.Accepted != uploads {
		t.Errorf("%d of %d files accepted", rep.Accepted, uploads)
	}
	if versions > 1 && (rep.Docs == nil || rep.Docs.Documents != cfg.Files || rep.Docs.Delivered == 0) {
		t.Errorf("documents checked: %+v, want %d documents with versions at the target", rep.Docs, cfg.Files)
	}
}

// TestClusterShort is make cluster-test in small: 150 files through 2 API
// and 3 worker processes on a 3-node NATS cluster (stream R3) and a 4-drive
// MinIO erasure set, while the script kills -9 the NATS server leading the
// stream, takes a MinIO drive away, and kills -9 a worker and an API
// process, each for good (the uploader retries on the other API). Nothing
// may be lost, stuck or corrupted, extra copies are bounded by deliveries
// cut short, and max_in_flight holds across the worker processes.
func TestClusterShort(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: about a minute")
	}
	minio := findMinIO()
	if minio == "" {
		t.Skip("no minio binary (scripts/stack.sh up installs it): the cluster test needs a private erasure set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cfg := clusterConfig()
	cfg.FerryBin = filepath.Join(t.TempDir(), "ferry")
	if err := buildFerry(ctx, cfg.FerryBin); err != nil {
		t.Fatal(err)
	}
	cfg.MinIOBin = minio
	cfg.Files = 150
	cfg.UploadFor = 20 * time.Second
	cfg.Uploaders = 6
	cfg.Seed = 13
	cfg.Settle = 90 * time.Second
	cfg.Script = clusterScript(cfg.UploadFor)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	rep, err := run(ctx, cfg, log)
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	var out bytes.Buffer
	rep.Print(&out)
	t.Log("\n" + out.String())
	if len(rep.Problems) > 0 {
		t.Errorf("cluster run broke promises; harness log:\n%s", logs.String())
	}
	for _, k := range []faultKind{faultNATSLeaderLoss, faultDriveLoss, faultWorkerKill, faultAPIKill} {
		if rep.Faults[k] != 1 {
			t.Errorf("%d %s injected, want 1", rep.Faults[k], k)
		}
	}
	if rep.Accepted != cfg.Files {
		t.Errorf("%d of %d files accepted", rep.Accepted, cfg.Files)
	}
	if rep.PeakInFlight[targetSlow] == 0 {
		t.Error("no delivery to the slow target was seen in flight")
	}
}
