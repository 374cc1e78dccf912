package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ferry-relay/ferry/client/syncer"
	"github.com/ferry-relay/ferry/client/syncer/s3source"
	"github.com/ferry-relay/ferry/client/syncer/source"
	"github.com/ferry-relay/ferry/client/syncer/watch"
)

// startHints starts, in wg, what tells the engine of changes between
// rescans: the recursive watcher of a folder (or its polling with
// --poll), or MinIO's notifications of an S3 prefix with --s3-events.
// Hints only hasten: the engine's rescans find every change anyway.
func startHints(ctx context.Context, wg *sync.WaitGroup, eng *syncer.Engine, src source.Source, f *syncFlags, log *slog.Logger) error {
	switch s := src.(type) {
	case *source.Dir:
		w, err := watch.New(s.Root(), watch.Options{
			Poll:     f.poll,
			Skip:     f.skip,
			OnChange: func(rel []string) { eng.Touch(rel...) },
			OnRescan: eng.Rescan,
			Log:      log,
		})
		if err != nil {
			return err
		}
		wg.Go(func() {
			if err := w.Run(ctx); err != nil && ctx.Err() == nil {
				log.Error("the watcher stopped; rescans go on", "err", err)
			}
		})
		// Every folder watched before the first pass lists them: no
		// change falls between the two.
		select {
		case <-w.Ready():
		case <-ctx.Done():
		}
	case *s3source.Source:
		if f.s3Events == "" {
			return nil
		}
		natsURL, subject, err := s3source.ParseEventsURL(f.s3Events)
		if err != nil {
			return exitWith(exitSyncUsage, err)
		}
		wg.Go(func() { listenEvents(ctx, s, natsURL, subject, eng, log) })
	}
	return nil
}

// Retries of a NATS server that cannot be reached when sync starts.
const (
	eventsRetryFirst = time.Second
	eventsRetryMax   = 30 * time.Second
)

// listenEvents hands the S3 notifications to the engine until ctx ends.
// A NATS server that cannot be reached at first (down, restarting,
// started after sync) is tried again, with backoff, for as long as sync
// runs, and said once: a sync that runs for weeks must not do without
// its notifications because NATS was away when it started. Once
// connected, Events reconnects by itself. Whenever notifications may have
// been lost (NATS reconnected or came at last, messages dropped) the
// engine lists the whole prefix at once rather than at the next --poll.
func listenEvents(ctx context.Context, s *s3source.Source, natsURL, subject string, eng *syncer.Engine, log *slog.Logger) {
	wait := eventsRetryFirst
	for failed := false; ; failed = true {
		opts := []s3source.EventsOption{s3source.OnGap(eng.Rescan)}
		if failed { // what was published meanwhile is found by a listing
			opts = append(opts, s3source.OnListening(func() { eng.Rescan("s3 events: listening after NATS was away") }))
		}
		err := s.Events(ctx, natsURL, subject, func(paths []string) { eng.Touch(paths...) }, opts...)
		if err == nil || ctx.Err() != nil {
			return
		}
		if !failed {
			log.Error("s3 events: not listening yet; listings go on, and NATS is tried again until it answers", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, eventsRetryMax)
	}
}
