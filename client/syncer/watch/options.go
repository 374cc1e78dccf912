package watch

import (
	"errors"
	"log/slog"
	"time"
)

// Defaults of Options.
const (
	DebounceDefault     = 2 * time.Second
	DeadlineDefault     = 30 * time.Second
	FallbackPollDefault = 30 * time.Second
	MaxPathsDefault     = 10_000
)

// Options configure a Watcher. The zero value watches with the defaults and
// reports nothing.
type Options struct {
	// Debounce is how long the tree must be quiet before the paths seen
	// changing are handed to OnChange (default 2 s).
	Debounce time.Duration
	// Deadline bounds the wait under constant writes: paths are handed over
	// at most this long after the first of them was seen (default 30 s).
	Deadline time.Duration
	// Poll > 0 turns fsnotify off: OnRescan("poll") every Poll, nothing else.
	// For network filesystems, where events do not arrive.
	Poll time.Duration
	// FallbackPoll is the polling interval once watching is known to be
	// incomplete: the watch limit was hit, or the root went away (default
	// 30 s). The root is checked as often (gone, back, remounted).
	FallbackPoll time.Duration
	// MaxPaths bounds the set of changed paths kept between two hand-overs;
	// past it the set is dropped and OnRescan("too-many-changes") is said
	// instead of OnChange (default 10,000).
	MaxPaths int
	// Skip reports what is not watched nor reported: rel is slash-separated
	// and relative to the root, isDir whether it is a directory (a skipped
	// directory is not descended into). Nil skips nothing.
	Skip func(rel string, isDir bool) bool
	// OnChange receives, debounced, the slash-separated paths relative to
	// the root of files and directories that may have changed (created,
	// written, removed, renamed from or to), sorted, each once. A directory
	// stands for everything under it.
	OnChange func(rel []string)
	// OnRescan asks for a full rescan; reason is "overflow" (events were
	// lost), "limit" (the watch limit was hit; said once), "poll" (a polling
	// tick), "too-many-changes", "new-dir-error" (a new directory could not
	// be watched or listed), "root-gone" (the root was removed or moved),
	// "rewatch" (the root came back, was replaced, or its watches were
	// dropped, as by a remount: the tree is watched again from scratch) or
	// "error" (fsnotify reported another error, logged).
	OnRescan func(reason string)
	// AddWatch, when set, is called before each directory watch is added,
	// with the directory's absolute path; an error it returns is taken as
	// the error of adding that watch (tests inject syscall.ENOSPC this way,
	// rather than lowering the machine's limit). Nil: only fsnotify's Add.
	AddWatch func(dir string) error
	// Log receives the warnings (the watch limit, directories that cannot
	// be watched). Nil discards them.
	Log *slog.Logger
}

// WithDefaults returns o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	if o.Debounce == 0 {
		o.Debounce = DebounceDefault
	}
	if o.Deadline == 0 {
		o.Deadline = DeadlineDefault
	}
	if o.FallbackPoll == 0 {
		o.FallbackPoll = FallbackPollDefault
	}
	if o.MaxPaths == 0 {
		o.MaxPaths = MaxPathsDefault
	}
	if o.OnChange == nil {
		o.OnChange = func([]string) {}
	}
	if o.OnRescan == nil {
		o.OnRescan = func(string) {}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate reports an option that cannot work.
func (o Options) Validate() error {
	switch {
	case o.Debounce < 0, o.Deadline < 0, o.Poll < 0, o.FallbackPoll < 0:
		return errors.New("watch: durations must not be negative")
	case o.MaxPaths < 0:
		return errors.New("watch: MaxPaths must not be negative")
	}
	return nil
}
