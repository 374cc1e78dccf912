package watch_test

import (
	"context"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path"
	"strings"

	"github.com/ferry-relay/ferry/client/syncer/watch"
)

// Watch a folder and hand its changes to a sync engine: paths to look at
// again, or a request for a full rescan. The callbacks only pass the word
// on, so the Watcher's goroutine is never held.
func Example() {
	touch := make(chan []string, 16)
	rescan := make(chan string, 1)
	w, err := watch.New("/srv/scans", watch.Options{
		Skip: func(rel string, isDir bool) bool {
			if isDir {
				return path.Base(rel) == ".git"
			}
			return strings.HasSuffix(rel, ".tmp")
		},
		OnChange: func(rel []string) { touch <- rel },
		OnRescan: func(reason string) {
			select {
			case rescan <- reason:
			default: // One pending rescan covers the next.
			}
		},
		Log: slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case paths := <-touch:
				log.Printf("look again at %q", paths)
			case reason := <-rescan:
				log.Printf("rescan everything (%s)", reason)
			}
		}
	}()
	if err := w.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
