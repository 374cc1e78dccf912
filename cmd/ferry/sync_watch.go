package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ferry-relay/ferry/client/syncer"
	"github.com/ferry-relay/ferry/client/syncer/source"
)

// statusFile is where a running sync writes its status, for ferry sync
// status (which cannot open the locked state meanwhile).
const statusFile = "status.json"

// statusEvery is how often the status line and file are refreshed.
const statusEvery = time.Second

// runningStatus is the content of statusFile.
type runningStatus struct {
	PID     int                `json:"pid"`
	Running bool               `json:"running"`
	Updated time.Time          `json:"updated"`
	Status  syncer.Status      `json:"status"`
	Pending []syncer.PendingOp `json:"pending_ops"`
}

// watchSync runs the engine until ctx ends, with the watcher's hints when
// the source is a folder, and the status line and file refreshed.
func watchSync(ctx context.Context, eng *syncer.Engine, src source.Source, f *syncFlags, out *syncPrinter, state string, log *slog.Logger) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { refresh(ctx, eng, out, state, true) })
	if err := startHints(ctx, &wg, eng, src, f, log); err != nil {
		return err
	}
	err := eng.Run(ctx)
	cancel()
	writeStatusFile(state, eng, false)
	out.summary(syncer.Summary{Status: eng.Status()})
	return err
}

// onceSync makes one pass with the status line and file refreshed.
func onceSync(ctx context.Context, eng *syncer.Engine, out *syncPrinter, state string) (syncer.Summary, error) {
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { refresh(rctx, eng, out, state, true) })
	sum, err := eng.Once(ctx)
	cancel()
	wg.Wait()
	writeStatusFile(state, eng, false)
	out.summary(sum)
	return sum, err
}

// refresh redraws the status line and rewrites the status file every
// statusEvery until ctx ends.
func refresh(ctx context.Context, eng *syncer.Engine, out *syncPrinter, state string, running bool) {
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			out.statusLine(eng.Status())
			writeStatusFile(state, eng, running)
		}
	}
}

// writeStatusFile writes the engine's status into the state folder
// (atomically: a reader never sees half of it).
func writeStatusFile(state string, eng *syncer.Engine, running bool) {
	ops, _ := eng.PendingOps(100)
	b, err := json.MarshalIndent(runningStatus{PID: os.Getpid(), Running: running, Updated: time.Now().UTC(),
		Status: eng.Status(), Pending: ops}, "", "  ")
	if err != nil {
		return
	}
	tmp := filepath.Join(state, statusFile+".tmp")
	if os.WriteFile(tmp, b, 0o600) == nil {
		_ = os.Rename(tmp, filepath.Join(state, statusFile))
	}
}
