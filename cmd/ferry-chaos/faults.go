package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"
)

// faultKind is a kind of failure the harness injects.
type faultKind string

// The faults.
const (
	faultWorkerKill    faultKind = "worker SIGKILL"
	faultWorkerTerm    faultKind = "worker SIGTERM"
	faultAPIKill       faultKind = "API SIGKILL"
	faultNATSKill      faultKind = "NATS SIGKILL"
	faultPostgresCrash faultKind = "Postgres crash"
	faultMinIOKill     faultKind = "MinIO SIGKILL"
	faultTargetOutage  faultKind = "target outage"
	faultStreamPurge   faultKind = "jobs stream purged"
	// On a cluster.
	faultNATSLeaderLoss faultKind = "NATS stream leader SIGKILL"
	faultDriveLoss      faultKind = "MinIO drive removed"
)

var faultOrder = []faultKind{faultWorkerKill, faultWorkerTerm, faultAPIKill, faultNATSKill,
	faultPostgresCrash, faultMinIOKill, faultTargetOutage, faultStreamPurge, faultNATSLeaderLoss, faultDriveLoss}

// fault is one injected failure: at At after the start of the uploads, take
// the component down for Down (the target: answer 503 to every upload),
// then bring it back.
type fault struct {
	At     time.Duration
	Kind   faultKind
	Worker int // which worker, for worker faults
	API    int // which API process, for API kills
	Down   time.Duration
	// Permanent faults are never undone: the process stays dead, the
	// drive gone (the leader loss and the drive loss always are).
	Permanent bool
	// ServeWithin, for an API kill, is how soon the restarted API must
	// answer (zero: not checked).
	ServeWithin time.Duration
}

// faults injects failures into a cluster and keeps their record.
type faults struct {
	c *cluster

	mu     sync.Mutex
	busy   map[string]bool // components down right now
	counts map[faultKind]int
	// killed are the ids of the workers killed with SIGKILL (hostname-pid,
	// the prefix of their attempts' worker column).
	killed map[string]bool
	// stopped are the ids of the workers stopped with SIGTERM.
	stopped    map[string]bool
	handedBack int // deliveries handed back by stopped workers
	// leaderKilled names the NATS server that led the stream and was
	// killed for good; driveRemoved the MinIO drive taken away.
	leaderKilled, driveRemoved string
	problems                   []string // broken promises seen while injecting
	wg                         sync.WaitGroup
}

func newFaults(c *cluster) *faults {
	return &faults{c: c, busy: map[string]bool{}, counts: map[faultKind]int{},
		killed: map[string]bool{}, stopped: map[string]bool{}}
}

func (fs *faults) problem(format string, a ...any) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.problems = append(fs.problems, fmt.Sprintf(format, a...))
}

// component names the thing a fault takes down.
func (f fault) component() string {
	switch f.Kind {
	case faultWorkerKill, faultWorkerTerm:
		return fmt.Sprintf("worker%d", f.Worker+1)
	case faultAPIKill:
		return fmt.Sprintf("api%d", f.API+1)
	case faultNATSKill, faultNATSLeaderLoss:
		return "nats"
	case faultDriveLoss:
		return "minio"
	case faultPostgresCrash:
		return "postgres"
	case faultMinIOKill:
		return "minio"
	}
	return string(f.Kind)
}

// inject runs f in the background; a fault on a component that is already
// down is skipped.
func (fs *faults) inject(f fault) {
	name := f.component()
	fs.mu.Lock()
	if fs.busy[name] {
		fs.mu.Unlock()
		return
	}
	fs.busy[name] = true
	fs.mu.Unlock()
	fs.wg.Go(func() {
		defer func() {
			fs.mu.Lock()
			delete(fs.busy, name)
			fs.mu.Unlock()
		}()
		if err := fs.run(f); err != nil {
			fs.problem("%s: %v", f.Kind, err)
		}
	})
}

// wait returns when every injected fault is over and its component back.
func (fs *faults) wait() { fs.wg.Wait() }

func (fs *faults) count(k faultKind) {
	fs.mu.Lock()
	fs.counts[k]++
	fs.mu.Unlock()
}

// run takes the component down and brings it back after f.Down.
func (fs *faults) run(f fault) error {
	c := fs.c
	ctx := context.Background()
	log := c.log.With("fault", string(f.Kind), "down", f.Down)
	switch f.Kind {
	case faultWorkerKill:
		w := c.workers[f.Worker]
		if f.Permanent {
			fs.waitForDelivery(ctx, w)
		}
		pid, err := w.kill()
		if err != nil {
			return nil // already down: nothing injected
		}
		fs.count(f.Kind)
		fs.mu.Lock()
		fs.killed[c.workerID(pid)] = true
		fs.mu.Unlock()
		log.Info("killed worker", "worker", w.name, "pid", pid, "for_good", f.Permanent)
		if f.Permanent {
			c.retire(w)
			return nil
		}
		pause(f.Down)
		return w.start()
	case faultWorkerTerm:
		return fs.stopWorker(ctx, f)
	case faultAPIKill:
		api := c.apis[f.API%len(c.apis)]
		pid, err := api.kill()
		if err != nil {
			return nil
		}
		fs.count(f.Kind)
		if c.cfg.Serve {
			// Its deliveries in flight were cut short too.
			fs.mu.Lock()
			fs.killed[c.workerID(pid)] = true
			fs.mu.Unlock()
		}
		log.Info("killed API", "api", api.name, "pid", pid, "for_good", f.Permanent)
		if f.Permanent {
			c.retire(api)
			return nil
		}
		pause(f.Down)
		if err := api.start(); err != nil {
			return err
		}
		if f.ServeWithin > 0 {
			start := time.Now()
			if err := waitUntil(ctx, f.ServeWithin, func() error { return c.apiServes(f.API % len(c.apis)) }); err != nil {
				fs.problem("the API restarted at %s did not serve within %s (%v): is it waiting for a dependency that is down?",
					start.Format("15:04:05.000"), f.ServeWithin, err)
			}
		}
		return nil
	case faultNATSKill:
		if _, err := c.nats[0].kill(); err != nil {
			return nil
		}
		fs.count(f.Kind)
		log.Info("killed NATS", "server", c.nats[0].name)
		pause(f.Down)
		return c.nats[0].start()
	case faultNATSLeaderLoss:
		return fs.killStreamLeader(ctx, log)
	case faultDriveLoss:
		if len(c.minioDrives) == 0 {
			return nil
		}
		d := c.minioDrives[len(c.minioDrives)-1]
		// Renamed away while MinIO runs: every request to the drive fails
		// from now on, as a pulled disk's would.
		if err := os.Rename(d, d+".removed"); err != nil {
			return err
		}
		fs.count(f.Kind)
		fs.mu.Lock()
		fs.driveRemoved = d
		fs.mu.Unlock()
		log.Info("removed a MinIO drive", "drive", d)
		return nil
	case faultPostgresCrash:
		if err := c.pg.crash(ctx); err != nil {
			return err
		}
		fs.count(f.Kind)
		log.Info("crashed Postgres")
		pause(f.Down)
		return c.pg.start(ctx)
	case faultMinIOKill:
		if c.minio == nil {
			return nil
		}
		if _, err := c.minio.kill(); err != nil {
			return nil
		}
		fs.count(f.Kind)
		log.Info("killed MinIO")
		pause(f.Down)
		return c.minio.start()
	case faultStreamPurge:
		return fs.purgeStream(ctx, log)
	case faultTargetOutage:
		fs.count(f.Kind)
		log.Info("target down")
		c.outage.down(f.Down)
		pause(f.Down)
		return nil
	}
	return fmt.Errorf("unknown fault")
}

// killStreamLeader kills, for good, the NATS server that leads the jobs
// stream.
func (fs *faults) killStreamLeader(ctx context.Context, log *slog.Logger) error {
	c := fs.c
	q, err := c.connectQueue(ctx, "chaos-faults")
	if err != nil {
		return err
	}
	defer q.Close()
	var leader string
	if err := waitUntil(ctx, 20*time.Second, func() error {
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		h, err := q.StreamHealth(hctx)
		if err != nil {
			return err
		}
		if h.Leader == "" {
			return fmt.Errorf("stream has no leader: %s", h)
		}
		leader = h.Leader
		return nil
	}); err != nil {
		return fmt.Errorf("finding the stream leader: %w", err)
	}
	for _, p := range c.nats {
		if p.name != leader {
			continue
		}
		pid, err := p.kill()
		if err != nil {
			return nil
		}
		c.retire(p)
		fs.count(faultNATSLeaderLoss)
		fs.mu.Lock()
		fs.leaderKilled = leader
		fs.mu.Unlock()
		log.Info("killed the NATS server leading the stream, for good", "server", leader, "pid", pid)
		return nil
	}
	return fmt.Errorf("the stream leader %q is none of the harness's servers", leader)
}

// waitForDelivery waits a little for w to be delivering to the slow
// target, so that killing it cuts a delivery short.
func (fs *faults) waitForDelivery(ctx context.Context, w *process) {
	c := fs.c
	if pid := w.pid(); pid != 0 {
		_ = waitUntil(ctx, 3*time.Second, func() error {
			var n int
			if err := c.db.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE status = 'RUNNING'
				AND target = ANY($1) AND lease_owner LIKE $2`, []string{targetSlow, targetDocsSlow}, c.workerID(pid)+"/%").Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return errors.New("idle")
			}
			return nil
		})
	}
}

// stopWorker stops a worker gracefully and checks the promise of a graceful
// shutdown: it exits cleanly within its grace, and leaves no job RUNNING.
func (fs *faults) stopWorker(ctx context.Context, f fault) error {
	c := fs.c
	w := c.workers[f.Worker]
	// Stop it mid-delivery: wait a little for a slow delivery in flight.
	fs.waitForDelivery(ctx, w)
	pid, exited, err := w.signal(syscall.SIGTERM)
	if err != nil {
		return nil
	}
	fs.count(f.Kind)
	id := c.workerID(pid)
	fs.mu.Lock()
	fs.stopped[id] = true
	fs.mu.Unlock()
	limit := c.cfg.ShutdownGrace + 15*time.Second
	select {
	case <-exited:
		if err := w.exitErr(); err != nil {
			fs.problem("worker %s stopped by SIGTERM exited with %v", id, err)
		}
	case <-time.After(limit):
		fs.problem("worker %s did not exit within %s of SIGTERM", id, limit)
		_, _ = w.kill()
	}
	// Nothing of the stopped worker may stay RUNNING (Postgres may be
	// down for another fault: wait for it).
	var running, handed int
	err = waitUntil(ctx, time.Minute, func() error {
		return c.db.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM jobs WHERE status = 'RUNNING' AND lease_owner LIKE $1),
			(SELECT count(*) FROM attempts WHERE worker LIKE $1 AND outcome = 'INTERRUPTED')`,
			id+"/%").Scan(&running, &handed)
	})
	if err != nil {
		fs.problem("checking worker %s after SIGTERM: %v", id, err)
	} else if running > 0 {
		fs.problem("worker %s stopped by SIGTERM left %d jobs RUNNING", id, running)
	}
	fs.mu.Lock()
	fs.handedBack += handed
	fs.mu.Unlock()
	c.log.Info("stopped worker gracefully", "worker", w.name, "pid", pid, "handed_back", handed)
	pause(f.Down)
	return w.start()
}

// workerID is the id a ferry worker process gives itself.
func (c *cluster) workerID(pid int) string { return fmt.Sprintf("%s-%d", c.host, pid) }

// pause waits d; a fault's component always comes back, even when the run
// is ending.
func pause(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	<-t.C
}

// script injects the faults at their times from start, until ctx ends.
func (fs *faults) script(ctx context.Context, start time.Time, script []fault) {
	for _, f := range script {
		if !sleepCtx(ctx, time.Until(start.Add(f.At))) {
			return
		}
		fs.inject(f)
	}
}

// random injects random faults of the given kinds (all when empty) every
// min to max until ctx ends.
func (fs *faults) random(ctx context.Context, seed uint64, every [2]time.Duration, only []faultKind) {
	rng := rand.New(rand.NewPCG(seed, 0xfa17))
	span := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
	}
	type weighted struct {
		kind   faultKind
		weight int
	}
	kinds := []weighted{
		{faultWorkerKill, 30}, {faultWorkerTerm, 10}, {faultAPIKill, 20},
		{faultNATSKill, 12}, {faultPostgresCrash, 12}, {faultTargetOutage, 6},
	}
	if fs.c.minio != nil {
		kinds = append(kinds, weighted{faultMinIOKill, 10})
	}
	if slices.Contains(only, faultStreamPurge) {
		kinds = append(kinds, weighted{faultStreamPurge, 10}) // only when asked for
	}
	if len(only) > 0 {
		kinds = slices.DeleteFunc(kinds, func(w weighted) bool { return !slices.Contains(only, w.kind) })
	}
	total := 0
	for _, k := range kinds {
		total += k.weight
	}
	for {
		if !sleepCtx(ctx, span(every[0], every[1])) {
			return
		}
		n := rng.IntN(total)
		var kind faultKind
		for _, k := range kinds {
			if n < k.weight {
				kind = k.kind
				break
			}
			n -= k.weight
		}
		f := fault{Kind: kind, Worker: rng.IntN(len(fs.c.workers)), API: rng.IntN(len(fs.c.apis))}
		switch kind {
		case faultWorkerKill:
			f.Down = span(0, 2*time.Second)
		case faultWorkerTerm, faultAPIKill:
			f.Down = span(0, time.Second)
		case faultNATSKill, faultPostgresCrash, faultMinIOKill:
			f.Down = span(500*time.Millisecond, 3*time.Second)
		case faultTargetOutage:
			f.Down = span(2*time.Second, 10*time.Second)
		}
		fs.inject(f)
	}
}
