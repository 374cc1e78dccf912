package main

import (
	"context"
	"sync"

	"github.com/ferry-relay/ferry/client/syncer"
	"github.com/ferry-relay/ferry/client/syncer/source"
)

// startHints starts what tells the engine of changes between rescans.
// Until the watcher is wired, Run's periodic rescans (--interval, or
// --poll) find every change.
func startHints(_ context.Context, _ *sync.WaitGroup, _ *syncer.Engine, _ source.Source, _ *syncFlags) error {
	return nil
}
