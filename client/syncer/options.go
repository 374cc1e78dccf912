// Package syncer is the engine of ferry sync: it keeps a target in step
// with a source (a local folder or an S3 prefix). A pass lists the source,
// compares it with the index (client/syncer/index), waits until changed
// files are stable, hashes them in parallel, and records each change as a
// pending op before it is sent, so that a crash at any moment re-sends the
// same content (which ferry answers with the same job) and loses nothing.
// Run keeps going on hints (Touch, Rescan) from a watcher and on periodic
// rescans; transient failures of ferry keep changes pending and are
// retried with backoff.
package syncer

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-relay/ferry/client"
	"github.com/ferry-relay/ferry/client/syncer/index"
	"github.com/ferry-relay/ferry/client/syncer/source"
)

// Defaults of Options.
const (
	MinAgeDefault      = 2 * time.Second
	IntervalDefault    = time.Hour
	ConcurrencyDefault = 4
	SettleMaxDefault   = time.Minute
	RetryForDefault    = 2 * time.Minute
	MaxDeleteDefault   = "10%"
	// SessionThresholdDefault is push's: 64 MiB.
	SessionThresholdDefault = 64 << 20
	backoffInitial          = time.Second
	backoffMax              = time.Minute
)

// Options say what to keep in step and how.
type Options struct {
	// Target is the target's name at ferry (required); Batch and Params
	// go with every upload.
	Target string
	Batch  string
	Params map[string]string
	// Delete sends the deletes of files gone from the source.
	Delete bool
	// MaxDelete is the most a pass may delete (MaxDeleteDefault if zero).
	MaxDelete DeleteLimit
	// MinAge is how far apart two looks at a changed file must be, both
	// seeing the same size and mtime, before it is taken.
	MinAge time.Duration
	// Interval is the time between full rescans in Run (jittered).
	Interval time.Duration
	// Concurrency is how many uploads are in flight at once; Hashers how
	// many files are hashed at once (GOMAXPROCS if zero).
	Concurrency int
	Hashers     int
	// SettleMax is how long Once waits for files still changing;
	// RetryFor how long it retries while ferry is unreachable or busy.
	SettleMax time.Duration
	RetryFor  time.Duration
	// SessionThreshold is the size from which a file goes in parts
	// through a resumable upload session (SessionThresholdDefault if
	// zero; -1 never).
	SessionThreshold int64
	// OnEvent, if set, hears of every change and event, from one
	// goroutine at a time.
	OnEvent func(Event)
}

// WithDefaults fills the zero fields.
func (o Options) WithDefaults() Options {
	if o.MaxDelete == (DeleteLimit{}) {
		o.MaxDelete, _ = ParseDeleteLimit(MaxDeleteDefault)
	}
	if o.MinAge == 0 {
		o.MinAge = MinAgeDefault
	}
	if o.Interval <= 0 {
		o.Interval = IntervalDefault
	}
	if o.Concurrency <= 0 {
		o.Concurrency = ConcurrencyDefault
	}
	if o.Hashers <= 0 {
		o.Hashers = runtime.GOMAXPROCS(0)
	}
	if o.SettleMax <= 0 {
		o.SettleMax = SettleMaxDefault
	}
	if o.SessionThreshold == 0 {
		o.SessionThreshold = SessionThresholdDefault
	}
	if o.RetryFor <= 0 {
		o.RetryFor = RetryForDefault
	}
	return o
}

// Validate checks the options.
func (o Options) Validate() error {
	if o.Target == "" {
		return errors.New("no target: pass --target")
	}
	if o.MinAge < 0 {
		return errors.New("--min-age must not be negative")
	}
	return nil
}

// Deps are what the engine works with.
type Deps struct {
	Client *client.Client
	Source source.Source
	Index  *index.Index
	Log    *slog.Logger
}

// DeleteLimit is the most deletes one pass may send: a share of the
// tracked documents, or a count.
type DeleteLimit struct {
	Percent float64
	Count   int
}

// ParseDeleteLimit reads "10%" or "500".
func ParseDeleteLimit(s string) (DeleteLimit, error) {
	if p, ok := strings.CutSuffix(strings.TrimSpace(s), "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v < 0 || v > 100 {
			return DeleteLimit{}, fmt.Errorf("--max-delete %q: want a percentage from 0%% to 100%% or a count", s)
		}
		return DeleteLimit{Percent: v}, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return DeleteLimit{}, fmt.Errorf("--max-delete %q: want a percentage (10%%) or a count", s)
	}
	return DeleteLimit{Count: n, Percent: -1}, nil
}

// Allows reports whether n deletes out of tracked documents are within
// the limit. A percentage always allows one delete, so that removing a
// file from a small folder is not refused.
func (l DeleteLimit) Allows(n, tracked int) bool {
	if l.Percent < 0 {
		return n <= l.Count
	}
	return n <= max(1, int(l.Percent*float64(tracked)/100))
}

func (l DeleteLimit) String() string {
	if l.Percent < 0 {
		return strconv.Itoa(l.Count)
	}
	return strconv.FormatFloat(l.Percent, 'f', -1, 64) + "%"
}
