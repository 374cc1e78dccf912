package main

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"
)

// chaosQueueShort is make chaos -neighbour -faults stream-purge in small
// (about 30 s): 100 files while a second ferry installation shares the
// NATS server and uploads 25 of its own to targets of the same names, and
// the jobs stream is purged three times while jobs wait for the slow
// target. Nothing may be lost or stuck in either installation. Before
// installations had streams of their own, each took about half of the
// other's messages and dropped them; before the stream's mark, a purge
// left its jobs QUEUED for good.
func chaosQueueShort(t *testing.T, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := defaultConfig()
	cfg.FerryBin = bin
	cfg.Neighbour = true
	cfg.Files = 100
	cfg.UploadFor = 10 * time.Second
	cfg.Uploaders = 4
	cfg.Seed = 20
	cfg.SlowShare = 0.2
	cfg.Settle = 45 * time.Second
	cfg.Script = []fault{
		{At: 3 * time.Second, Kind: faultStreamPurge},
		{At: 5 * time.Second, Kind: faultWorkerKill, Worker: 0, Down: 500 * time.Millisecond},
		{At: 6 * time.Second, Kind: faultStreamPurge},
		{At: 9 * time.Second, Kind: faultStreamPurge},
	}
	var logs bytes.Buffer
	rep, err := run(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	var out bytes.Buffer
	rep.Print(&out)
	t.Log("\n" + out.String())
	if len(rep.Problems) > 0 {
		t.Errorf("chaos run broke promises; harness log:\n%s", logs.String())
	}
	if rep.Faults[faultStreamPurge] == 0 || rep.Neighbour == "" {
		t.Errorf("no purge (%d) or no second installation (%q)", rep.Faults[faultStreamPurge], rep.Neighbour)
	}
}
