package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ferry-relay/ferry/client/syncer/index"
)

// maxHintsFloor is the least number of hinted paths kept before hints
// fall back to a full rescan; the bound is the tracked count above it.
const maxHintsFloor = 10_000

// ErrStateMismatch means the state folder belongs to another source,
// server or target.
var ErrStateMismatch = errors.New("state belongs to another sync")

// Engine keeps one target in step with one source.
type Engine struct {
	o   Options
	d   Deps
	log *slog.Logger
	c   counters

	mu         sync.Mutex
	hints      map[string]struct{}
	rescan     string // reason of a full rescan asked for, "" if none
	wake       chan struct{}
	noDelete   bool // the target's kind has no delete
	lastGuard  int  // deletes held at the last guard message (said once)
	eventsMu   sync.Mutex
	track      tracker
	unsettled  int
	heldDelete int
	running    bool // in Run: unsettled files are looked at again later
}

// New returns an engine; server names the ferry server for the state's
// identity. It checks that the state in d.Index is this sync's.
func New(o Options, d Deps, server string) (*Engine, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{o: o, d: d, log: d.Log, hints: map[string]struct{}{}, wake: make(chan struct{}, 1)}
	err := d.Index.Update(func(tx *index.Tx) error {
		m, err := tx.Meta()
		if err != nil {
			return err
		}
		want := index.Meta{Source: d.Source.String(), Server: server, Target: o.Target}
		if m.Source == "" {
			m.Source, m.Server, m.Target = want.Source, want.Server, want.Target
			return tx.SetMeta(m)
		}
		if m.Source != want.Source || m.Server != want.Server || m.Target != want.Target {
			return fmt.Errorf("%w: %s is the state of %s to target %s at %s", ErrStateMismatch,
				d.Index.Dir(), m.Source, m.Target, m.Server)
		}
		tracked, pending := tx.Counts()
		e.c.tracked.Store(int64(tracked))
		e.c.pending.Store(int64(pending))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Touch is a hint that the files or folders at paths (slash-separated,
// relative to the source's root) may have changed. Hints beyond a bound
// become a full rescan.
func (e *Engine) Touch(paths ...string) {
	e.mu.Lock()
	limit := max(maxHintsFloor, int(e.c.tracked.Load()))
	for _, p := range paths {
		if len(e.hints) >= limit {
			e.rescan = "too many changes at once"
			clear(e.hints)
			break
		}
		e.hints[p] = struct{}{}
	}
	e.mu.Unlock()
	e.poke()
}

// Rescan is a hint that the whole source should be listed again soon.
func (e *Engine) Rescan(reason string) {
	e.mu.Lock()
	if e.rescan == "" {
		e.rescan = reason
	}
	e.mu.Unlock()
	e.poke()
}

func (e *Engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// takeHints returns the hinted paths and a rescan asked for, and forgets
// them.
func (e *Engine) takeHints() (paths []string, rescan string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for p := range e.hints {
		paths = append(paths, p)
	}
	clear(e.hints)
	rescan, e.rescan = e.rescan, ""
	return paths, rescan
}

// Status returns the engine's counters now.
func (e *Engine) Status() Status { return e.c.snapshot() }

// emit tells OnEvent of ev.
func (e *Engine) emit(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if e.o.OnEvent == nil {
		return
	}
	e.eventsMu.Lock()
	defer e.eventsMu.Unlock()
	e.o.OnEvent(ev)
}

// Once makes one full pass and sends what changed, retrying transient
// failures of ferry for up to RetryFor. A source that is gone is an error
// matching source.ErrGone. When ctx ends, the uploads in flight finish
// and Once returns what was done.
func (e *Engine) Once(ctx context.Context) (Summary, error) {
	e.seed(ctx)
	if err := e.pass(ctx, scope{full: true}); err != nil {
		return e.summary(), err
	}
	deadline := time.Now().Add(e.o.RetryFor)
	bo := newBackoff()
	for round := 0; ctx.Err() == nil; round++ {
		err := e.sendPending(ctx)
		if errors.Is(err, errTransient) {
			if time.Now().After(deadline) {
				e.log.Warn("ferry still unreachable or busy; changes stay pending for the next run", "pending", e.c.pending.Load())
				break
			}
			wait := bo.next()
			e.sayRetrying(wait, err)
			if !sleepCtx(ctx, wait) {
				break
			}
			continue
		}
		if err != nil {
			return e.summary(), err
		}
		e.sayResumed()
		paths, _ := e.takeHints() // files that changed while sent
		if len(paths) == 0 || round >= 3 {
			break
		}
		if err := e.pass(ctx, scope{paths: paths}); err != nil {
			return e.summary(), err
		}
	}
	return e.summary(), ctx.Err()
}

func (e *Engine) summary() Summary {
	return Summary{Status: e.c.snapshot(), Unsettled: e.unsettled, HeldDeletes: e.heldDelete}
}

// sleepCtx waits d, false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
