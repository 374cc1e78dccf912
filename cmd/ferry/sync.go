package main

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-relay/ferry/client/push"
	"github.com/ferry-relay/ferry/client/syncer"
	"github.com/ferry-relay/ferry/client/syncer/index"
	"github.com/ferry-relay/ferry/client/syncer/s3source"
	"github.com/ferry-relay/ferry/client/syncer/source"
)

// Exit statuses of ferry sync.
const (
	exitSyncIncomplete = 1 // a change was refused or not accepted
	exitSyncUsage      = 2 // usage or configuration
	exitSyncGone       = 3 // the source is gone
	exitSyncLocked     = 4 // another sync holds the state
)

// exitError ends the process with its code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitWith(code int, err error) error { return &exitError{code: code, err: err} }

// syncFlags are ferry sync's flags.
type syncFlags struct {
	api        apiFlags
	o          syncer.Options
	params     []string
	include    []string
	exclude    []string
	watch      bool
	poll       time.Duration
	maxDelete  string
	state      string
	asJSON     bool
	s3Endpoint string
	s3Events   string
	s3Insecure bool
	// skip is what the folder source skips (the watcher skips it too).
	skip func(rel string, isDir bool) bool
}

const syncLong = `Keep a target in step with SOURCE: each file is a document keyed by its path relative
to SOURCE; a new file becomes version 1, a changed one a new version, an unchanged one
(touched, copied back) is not sent. SOURCE is a local folder or s3://bucket/prefix.

Without --watch it syncs once and exits; with --watch it runs until stopped, reacting to
changes (debounced) and rescanning every --interval. A first Ctrl-C/SIGTERM stops after the
uploads in flight, a second at once. A file is taken only when stable: the same size and
mtime across two looks --min-age apart, and again after hashing. Temporary and lock files
(~$*, .~lock.*#, *.tmp, *.part, *.crdownload, *.swp, .DS_Store, Thumbs.db, .git/) are not
documents. Deletes reach the target only with --delete, and a pass that would delete more
than --max-delete of the tracked documents deletes nothing (say --max-delete N or 100% to
confirm). State (what was seen and sent) is kept in --state, default
$XDG_STATE_HOME/ferry/sync/<hash of source, server, target>; one sync at a time per state.

Exit status: 0 every change accepted by ferry (or, with --watch, stopped by a signal);
1 a change was refused, or not accepted (ferry unreachable past the retries, a file still
being written, deletes held by --max-delete); 2 usage or configuration; 3 the source is
gone (unmounted, deleted); 4 another ferry sync is running on the same state.`

func syncCommand() *cobra.Command {
	var f syncFlags
	cmd := &cobra.Command{
		Use:   "sync SOURCE --target T [--watch] [--delete] [flags]",
		Short: "Keep a target in step with a folder or an S3 prefix (once, or --watch)",
		Long:  syncLong,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return exitWith(exitSyncUsage, errors.New("ferry sync takes one SOURCE (a folder or s3://bucket/prefix)"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runSync(cmd, args[0], &f) },
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return exitWith(exitSyncUsage, err) })
	f.api.bind(cmd.Flags())
	bindSyncFlags(cmd.Flags(), &f)
	cmd.AddCommand(syncStatusCommand())
	return cmd
}

func bindSyncFlags(fs *pflag.FlagSet, f *syncFlags) {
	fs.StringVar(&f.o.Target, "target", "", "target to keep in step (required)")
	fs.StringVar(&f.o.Batch, "batch", "", "batch of the uploads (optional)")
	fs.StringArrayVar(&f.params, "param", nil, "parameter of every upload, as name=value (repeatable)")
	fs.BoolVar(&f.watch, "watch", false, "keep running: react to changes and rescan every --interval")
	fs.DurationVar(&f.o.Interval, "interval", syncer.IntervalDefault, "time between full rescans with --watch (jittered)")
	fs.DurationVar(&f.poll, "poll", 0, "rescan every POLL instead of watching for events (network filesystems; S3 default 30s)")
	fs.BoolVar(&f.o.Delete, "delete", false, "delete at the target the documents whose files are gone from the source")
	fs.StringVar(&f.maxDelete, "max-delete", syncer.MaxDeleteDefault, "most deletes one pass may send: a share of the tracked documents (10%) or a count")
	fs.StringArrayVar(&f.include, "include", nil, "sync only files matching this glob (repeatable; '*.pdf', 'scans/**/*.tif')")
	fs.StringArrayVar(&f.exclude, "exclude", nil, "skip files and folders matching this glob (repeatable)")
	fs.StringVar(&f.state, "state", "", "state folder (default $XDG_STATE_HOME/ferry/sync/<hash>)")
	fs.DurationVar(&f.o.MinAge, "min-age", syncer.MinAgeDefault, "a changed file is taken when two looks this far apart agree")
	fs.IntVar(&f.o.Concurrency, "concurrency", syncer.ConcurrencyDefault, "uploads in flight at once")
	fs.BoolVar(&f.asJSON, "json", false, "write events and the summary as JSON lines on standard output")
	fs.StringVar(&f.s3Endpoint, "s3-endpoint", "", "S3 endpoint of an s3:// SOURCE (host:port or URL) [AWS_ENDPOINT_URL]")
	fs.BoolVar(&f.s3Insecure, "s3-insecure", false, "talk to the S3 endpoint over plain http")
	fs.StringVar(&f.s3Events, "s3-events", "", "nats://host:port/subject of MinIO bucket notifications: hints that shorten the wait")
}

// runSync opens the source and the state and runs the engine.
func runSync(cmd *cobra.Command, arg string, f *syncFlags) error {
	ctx := cmd.Context()
	o, filter, err := f.options()
	if err != nil {
		return exitWith(exitSyncUsage, err)
	}
	c, err := f.api.client()
	if err != nil {
		return exitWith(exitSyncUsage, err)
	}
	out := newSyncPrinter(cmd.OutOrStdout(), cmd.ErrOrStderr(), f.asJSON)
	log := slog.New(slog.NewTextHandler(out.logWriter(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	src, state, closeSrc, err := openSyncSource(ctx, arg, f, filter, log)
	if err != nil {
		return err
	}
	defer closeSrc()
	if _, listed := src.(*s3source.Source); listed && f.watch {
		o.Interval = f.poll // an S3 prefix is listed every --poll
	}
	x, err := index.Open(state, 200*time.Millisecond)
	if err != nil {
		var le *index.LockedError
		if errors.As(err, &le) {
			return exitWith(exitSyncLocked, fmt.Errorf("%w; stop it first, or give this one another --state", le))
		}
		return exitWith(exitSyncUsage, err)
	}
	defer x.Close()
	o.OnEvent = out.event
	eng, err := syncer.New(o, syncer.Deps{Client: c, Source: src, Index: x, Log: log}, f.api.server)
	if err != nil {
		return exitWith(exitSyncUsage, err)
	}
	if f.watch {
		return watchSync(ctx, eng, src, f, out, x.Dir(), log)
	}
	sum, err := onceSync(ctx, eng, out, x.Dir())
	switch {
	case errors.Is(err, source.ErrGone):
		return exitWith(exitSyncGone, err)
	case err != nil && ctx.Err() == nil:
		return exitWith(exitSyncIncomplete, err)
	case !sum.Complete() || ctx.Err() != nil:
		return exitWith(exitSyncIncomplete, errors.New("not every change was accepted: run again (ferry sync status shows what is pending)"))
	}
	return nil
}

// options checks the flags and returns the engine's options and the
// include/exclude filter.
func (f *syncFlags) options() (syncer.Options, push.Filter, error) {
	o := f.o
	var err error
	if o.Params, err = parseParams(f.params); err != nil {
		return o, push.Filter{}, err
	}
	if o.MaxDelete, err = syncer.ParseDeleteLimit(f.maxDelete); err != nil {
		return o, push.Filter{}, err
	}
	filter, err := push.NewFilter(f.include, f.exclude)
	if err != nil {
		return o, push.Filter{}, err
	}
	return o, filter, o.WithDefaults().Validate()
}

// stateDir is --state, or the default one of (source, server, target).
func (f *syncFlags) stateDir(src string) (string, error) {
	if f.state != "" {
		return filepath.Abs(f.state)
	}
	return index.DefaultDir(src, f.api.server, f.o.Target)
}

// insideRel returns dir relative to root when it lies inside it.
func insideRel(root, dir string) (string, bool) {
	r, err := filepath.Rel(root, dir)
	if err != nil || r == "." || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(r), true
}
