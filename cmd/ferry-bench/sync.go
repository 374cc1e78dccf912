package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// The sync scenario (issue 22): `ferry sync`, the built binary, on a tree
// of SyncFiles small files, against a ferry serve delivering to the
// loopback sink, measured beside raw tools in the same run:
//
//   - first sync: bytes hashed over the first pass (walk, stability look,
//     hash, index writes) against sha256sum over the same files
//     (find | xargs -n 1000 -P1, and -P NumCPU);
//   - second sync of the unchanged tree against find -printf '%s %T@\n';
//   - with --watch, a change at idle until accepted (its JSON event) and
//     delivered (its job SUCCESS through GET /v1/jobs/{id});
//   - the RSS of the --watch process over SyncChurn of 1 % changes.
//
// Its parts live in sync*.go files of their own.

// syncFileSize is the size of every file of the tree.
const syncFileSize = 4 << 10

// syncTarget is the target ferry sync keeps in step.
const syncTarget = "bench"

// syncMinAge is --min-age of the first and second syncs, subtracted from
// the first pass's time. The --watch figures run with the default (2 s).
const syncMinAge = 100 * time.Millisecond

// syncDebounce is the watcher's default debounce (client/syncer/watch).
const syncDebounce = 2 * time.Second

// scenarioDeadlines are scenarios whose deadline is none of the two
// common ones.
var scenarioDeadlines = map[string]func(Sizes) time.Duration{
	"sync": func(s Sizes) time.Duration { return s.SyncDeadline },
}

func init() {
	scenarioNames = append(scenarioNames, "sync")
	scenarios = append(scenarios, scenario{"sync", syncScenario})
}

// syncBench is one sync scenario's tree, state and ferry.
type syncBench struct {
	e     *env
	p     *ferryProc
	opts  ferryOpts
	dir   string
	state string
	n     int
	bytes int64
	// version numbers the content written over a file, so every change is
	// new content.
	version int
	// cancelled counts the first sync's jobs cancelled undelivered.
	cancelled int
}

func syncScenario(ctx context.Context, e *env, rep *report) error {
	sz := e.cfg.Sizes
	pool, dbURL, err := e.freshDB(ctx, "")
	if err != nil {
		return err
	}
	defer pool.Close()
	// ferry listens at one address throughout: the state of a sync
	// belongs to one server, and ferry is restarted after the first sync.
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	s := &syncBench{e: e, dir: filepath.Join(e.tmp, "sync-tree"), state: filepath.Join(e.tmp, "sync-state"), n: sz.SyncFiles,
		opts: ferryOpts{role: "serve", targets: targetsYAML(e.sink.url, sz.E2EConcurrency, syncTarget), listen: addr}}
	if s.p, err = e.startFerry(ctx, pool, dbURL, s.opts); err != nil {
		return err
	}
	defer func() { s.p.stop() }()
	defer os.RemoveAll(s.dir)
	t := time.Now()
	if err := s.makeTree(); err != nil {
		return err
	}
	e.cfg.progress("sync: %d files of %s written in %s", s.n, sizeName(syncFileSize), time.Since(t).Round(100*time.Millisecond))
	if err := s.first(ctx, rep); err != nil {
		return fmt.Errorf("first sync: %w", err)
	}
	if err := s.drain(ctx, dbURL); err != nil {
		return err
	}
	if s.cancelled > 0 {
		rep.note("Sync: ferry had not delivered %d of the first sync's %d jobs %s after it ended (deliveries of new document versions ran far slower than the uploads on this machine); they were cancelled in the database with ferry stopped, and ferry restarted on the same address, so that the later figures neither share the CPU with that backlog nor queue behind it.",
			s.cancelled, s.n, syncDrainWait)
	}
	if err := s.second(ctx, rep); err != nil {
		return fmt.Errorf("second sync: %w", err)
	}
	if err := s.watch(ctx, rep); err != nil {
		return fmt.Errorf("sync --watch: %w", err)
	}
	rep.note("Sync: a tree of %s files of %s in folders of 1,000, each file distinct content, in the page cache (just written); ferry sync is the built binary (%s) run against a ferry serve delivering to the loopback sink (%d delivery slots), uploads --concurrency %d. First and second syncs with --min-age %s; the first pass's time runs from its rescan event to its first accepted event (the engine hashes every file before it sends any) minus --min-age, so it holds the walk, the index look-ups and writes, and the hashing. sha256sum runs as `find DIR -type f -print0 | xargs -0 -n 1000 -P1 sha256sum > /dev/null` (and -P %d), once each, before ferry, in the same run. The second sync is timed from the process's start to its exit (process start, index open, walk, index look-ups) against `find DIR -printf '%%s %%T@\\n' > /dev/null`, alternating, %d repetition(s).",
		count(s.n), sizeName(syncFileSize), e.cfg.FerryBin, sz.E2EConcurrency, sz.E2EConcurrency, syncMinAge, runtime.NumCPU(), e.cfg.Reps)
	return nil
}

// makeTree writes the files: folder d%03d holds files f%06d.bin.
func (s *syncBench) makeTree() error {
	buf := make([]byte, syncFileSize)
	for i := range s.n {
		dir := filepath.Join(s.dir, fmt.Sprintf("d%03d", i/1000))
		if i%1000 == 0 {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return err
			}
		}
		if _, err := io.ReadFull(newBlockReader(i, syncFileSize), buf); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%06d.bin", i)), buf, 0o600); err != nil {
			return err
		}
		s.bytes += syncFileSize
	}
	return nil
}

// rel is file i's path relative to the tree.
func syncRel(i int) string { return fmt.Sprintf("d%03d/f%06d.bin", i/1000, i) }

// change writes new content over file i (same size) and returns its path.
func (s *syncBench) change(i int) (string, error) {
	s.version++
	buf := make([]byte, syncFileSize)
	if _, err := io.ReadFull(newBlockReader(i, syncFileSize), buf); err != nil {
		return "", err
	}
	copy(buf, fmt.Sprintf("version %015d\n", s.version))
	rel := syncRel(i)
	return rel, os.WriteFile(filepath.Join(s.dir, filepath.FromSlash(rel)), buf, 0o600)
}

// timeShell runs a shell command and returns its wall time.
func timeShell(ctx context.Context, script string, args ...string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, "sh", append([]string{"-c", script, "sh"}, args...)...)
	t := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(t)
	if err != nil {
		return d, fmt.Errorf("%s: %w: %s", script, err, out)
	}
	return d, nil
}

// first times sha256sum over the tree, then the first ferry sync of it.
func (s *syncBench) first(ctx context.Context, rep *report) error {
	e := s.e
	raw := map[int]time.Duration{}
	for _, par := range []int{1, runtime.NumCPU()} {
		d, err := timeShell(ctx, `find "$1" -type f -print0 | xargs -0 -n 1000 -P "$2" sha256sum > /dev/null`, s.dir, strconv.Itoa(par))
		if err != nil {
			return err
		}
		raw[par] = d
		e.cfg.progress("sync: sha256sum (xargs -P%d) over %d files in %s: %.0f MB/s", par, s.n, d.Round(time.Millisecond), mbps(s.bytes, d))
	}
	var (
		mu             sync.Mutex
		rescan, first  time.Time
		accepted       int
		sum            *syncEvent
		stopProf       = func() {}
		stopProfOnce   sync.Once
		firstAccepted  = make(chan struct{})
		firstAcceptedF = sync.OnceFunc(func() { close(firstAccepted) })
	)
	sp, err := s.startSync("first", func(ev syncEvent, _ time.Time) {
		mu.Lock()
		defer mu.Unlock()
		switch ev.Event {
		case "rescan":
			if rescan.IsZero() {
				rescan = ev.Time
			}
		case "accepted":
			if first.IsZero() {
				first = ev.Time
				firstAcceptedF()
			}
			accepted++
		case "summary":
			sum = &ev
		}
	}, "--min-age", syncMinAge.String(), "--concurrency", strconv.Itoa(e.cfg.Sizes.E2EConcurrency))
	if err != nil {
		return err
	}
	stopProf = sp.profile(e, "sync-first-pass")
	go func() {
		select {
		case <-firstAccepted:
		case <-sp.exited:
		}
		stopProfOnce.Do(stopProf)
	}()
	err = sp.wait(ctx)
	stopProfOnce.Do(stopProf)
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	got, err := summaryOf(sum)
	if err != nil {
		return err
	}
	if got.Accepted != s.n || got.Hashed != s.n || rescan.IsZero() || first.IsZero() {
		return fmt.Errorf("want %d files accepted and hashed, got summary %+v (rescan at %v, first accepted at %v)", s.n, got, rescan, first)
	}
	pass := first.Sub(rescan) - syncMinAge
	whole := sp.ended.Sub(sp.started)
	ferry := mbps(got.HashedBytes, pass)
	e.cfg.progress("sync: first sync: pass (walk, hash, index) %s for %d bytes: %.0f MB/s; whole sync %s (%.0f files/s), %d accepted",
		pass.Round(time.Millisecond), got.HashedBytes, ferry, whole.Round(time.Millisecond), float64(s.n)/whole.Seconds(), accepted)
	p1, pn := mbps(s.bytes, raw[1]), mbps(s.bytes, raw[runtime.NumCPU()])
	rep.add(row{Figure: fmt.Sprintf("sync: first sync of %s × %s files, hashing throughput of the first pass (vs sha256sum, xargs -P1)", count(s.n), sizeName(syncFileSize)),
		Unit: "MB/s", Ferry: spreadOf([]float64{ferry}), Raw: spreadOf([]float64{p1}), Ratio: spreadOf([]float64{ferry / p1}), Goal: goal{kind: "ratio>=", x: 0.8}})
	rep.add(row{Figure: fmt.Sprintf("sync: the same (vs sha256sum, xargs -P%d)", runtime.NumCPU()),
		Unit: "MB/s", Ferry: spreadOf([]float64{ferry}), Raw: spreadOf([]float64{pn}), Ratio: spreadOf([]float64{ferry / pn})})
	rep.add(row{Figure: fmt.Sprintf("sync: first sync of %s files, whole (start to exit: hashed, uploaded, accepted)", count(s.n)),
		Unit: "files/s", Ferry: spreadOf([]float64{float64(s.n) / whole.Seconds()})})
	return nil
}
