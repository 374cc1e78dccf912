package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"
)

// watchRun is a running `ferry sync --watch` and the accepted events it
// wrote, by path.
type watchRun struct {
	sp *syncProc
	mu sync.Mutex
	// waiting maps a path to the channel its next accepted event goes to.
	waiting  map[string]chan accepted
	accepted int
}

// accepted is an accepted event and when the benchmark read it.
type accepted struct {
	job  string
	read time.Time
}

func (w *watchRun) on(ev syncEvent, read time.Time) {
	if ev.Event != "accepted" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.accepted++
	if c, ok := w.waiting[ev.Path]; ok {
		delete(w.waiting, ev.Path)
		c <- accepted{job: ev.Job, read: read}
	}
}

// expect returns the channel the next accepted event of path goes to.
func (w *watchRun) expect(path string) <-chan accepted {
	c := make(chan accepted, 1)
	w.mu.Lock()
	w.waiting[path] = c
	w.mu.Unlock()
	return c
}

// watch measures a change at idle and the RSS of `ferry sync --watch`
// with its defaults, then a change at idle with --min-age 1ms, to show
// what the stability wait costs.
func (s *syncBench) watch(ctx context.Context, rep *report) error {
	if err := s.watchWith(ctx, rep, ""); err != nil {
		return err
	}
	return s.watchWith(ctx, rep, "1ms")
}

// watchWith runs one `ferry sync --watch` (with --min-age minAge unless
// empty) and measures with it.
func (s *syncBench) watchWith(ctx context.Context, rep *report, minAge string) error {
	w := &watchRun{waiting: map[string]chan accepted{}}
	args := []string{"--watch", "--concurrency", "4"}
	name := "watch"
	if minAge != "" {
		args, name = append(args, "--min-age", minAge), "watch-min-age"
	}
	sp, err := s.startSync(name, w.on, args...)
	if err != nil {
		return err
	}
	w.sp = sp
	defer sp.stop()
	// A first change, not measured, shows the first pass done and the
	// watcher working. Its profile is that of a restart on an unchanged
	// tree (the one-shot second sync exits before its profile can be
	// read), the watcher's start, and one change.
	stopProf := func() {}
	if minAge == "" {
		stopProf = sp.profile(s.e, "sync-watch-start")
	}
	_, _, err = s.changeAndWait(ctx, w, s.n/2, false)
	stopProf()
	if err != nil {
		return fmt.Errorf("first change: %w", err)
	}
	if err := s.latency(ctx, w, rep, minAge); err != nil {
		return err
	}
	if minAge != "" {
		return nil
	}
	return s.churn(ctx, w, rep)
}

// changeAndWait changes file i and returns the time until its accepted
// event was read and, when delivered is set, until GET /v1/jobs/{id}
// answered SUCCESS.
func (s *syncBench) changeAndWait(ctx context.Context, w *watchRun, i int, delivered bool) (acc, del time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ch := w.expect(syncRel(i))
	if _, err := s.change(i); err != nil {
		return 0, 0, err
	}
	t := time.Now()
	var a accepted
	select {
	case a = <-ch:
	case <-w.sp.exited:
		return 0, 0, fmt.Errorf("ferry sync --watch exited: %w; see %s", cmp.Or(w.sp.err, errors.New("exit status 0")), w.sp.logPath)
	case <-ctx.Done():
		return 0, 0, fmt.Errorf("%s not accepted: %w; see %s", syncRel(i), ctx.Err(), w.sp.logPath)
	}
	acc = a.read.Sub(t)
	if !delivered {
		return acc, 0, nil
	}
	for {
		st, err := s.jobStatus(ctx, a.job)
		switch {
		case err != nil:
			return 0, 0, err
		case st == "SUCCESS":
			return acc, time.Since(t), nil
		case st == "FAILED" || st == "CANCELED":
			return 0, 0, fmt.Errorf("job %s of %s ended %s", a.job, syncRel(i), st)
		}
		select {
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("job %s of %s not delivered: %w", a.job, syncRel(i), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// latency changes SyncChanges files one at a time, each at idle.
func (s *syncBench) latency(ctx context.Context, w *watchRun, rep *report, minAge string) error {
	e := s.e
	n := e.cfg.Sizes.SyncChanges
	var acc, del []float64
	for k := range n {
		time.Sleep(500 * time.Millisecond) // idle between changes
		a, d, err := s.changeAndWait(ctx, w, (k*7919)%s.n, true)
		if err != nil {
			return err
		}
		acc, del = append(acc, ms(a)), append(del, ms(d))
	}
	pa, pd := percentile(acc, 50), percentile(del, 50)
	e.cfg.progress("sync --watch%s: %d changes at idle: accepted p50 %.0f ms (max %.0f), delivered p50 %.0f ms (max %.0f)",
		map[bool]string{true: " --min-age " + minAge}[minAge != ""], n, pa, percentile(acc, 100), pd, percentile(del, 100))
	budget := ms(syncDebounce)
	if minAge != "" {
		rep.add(row{Figure: fmt.Sprintf("sync --watch --min-age %s (for comparison): a change at idle until accepted, p50 of %d", minAge, n),
			Unit: "ms", Ferry: spreadOf([]float64{pa})})
		rep.add(row{Figure: fmt.Sprintf("sync --watch --min-age %s (for comparison): a change at idle until delivered, p50 of %d", minAge, n),
			Unit: "ms", Ferry: spreadOf([]float64{pd})})
		return nil
	}
	rep.add(row{Figure: fmt.Sprintf("sync --watch: a change at idle until accepted, p50 of %d (default debounce 2 s and --min-age 2 s)", n),
		Unit: "ms", Ferry: spreadOf([]float64{pa}), Goal: goal{kind: "value<", x: budget + 1000, unit: "ms"}})
	rep.add(row{Figure: fmt.Sprintf("sync --watch: a change at idle until delivered (GET /v1/jobs/{id} SUCCESS), p50 of %d", n),
		Unit: "ms", Ferry: spreadOf([]float64{pd}), Goal: goal{kind: "value<", x: budget + 2000, unit: "ms"}})
	return nil
}

// churn changes 1 % of the files every churnEvery over SyncChurn and
// reads the --watch process's RSS after each round's changes were
// accepted.
func (s *syncBench) churn(ctx context.Context, w *watchRun, rep *report) error {
	e := s.e
	sz := e.cfg.Sizes
	const rounds = 6
	every := (sz.SyncChurn / rounds).Round(100 * time.Millisecond)
	per := max(1, s.n/100)
	_, idle, err := memory(w.sp.cmd.Process.Pid)
	if err != nil {
		return err
	}
	stopProf := w.sp.profile(e, "sync-watch-churn")
	rng := rand.New(rand.NewPCG(22, uint64(s.n)))
	var rss []int64
	began := time.Now()
	for r := range rounds {
		next := began.Add(time.Duration(r+1) * every)
		if err := s.churnRound(ctx, w, rng, per); err != nil {
			stopProf()
			return fmt.Errorf("round %d: %w", r+1, err)
		}
		_, now, err := memory(w.sp.cmd.Process.Pid)
		if err != nil {
			stopProf()
			return err
		}
		rss = append(rss, now)
		e.cfg.progress("sync --watch: churn round %d: %d changes accepted, RSS %.1f MiB", r+1, per, float64(now)/(1<<20))
		time.Sleep(time.Until(next))
	}
	stopProf()
	w.sp.heap(e, "sync-watch")
	hwm, _, err := memory(w.sp.cmd.Process.Pid)
	if err != nil {
		return err
	}
	split := rssSplit(w.sp.cmd.Process.Pid)
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	first, last := mib(rss[0]), mib(rss[len(rss)-1])
	rep.add(row{Figure: fmt.Sprintf("sync --watch: peak RSS (VmHWM) on %s tracked files, over the first pass, %d changes at idle and %s of churn", count(s.n), sz.SyncChanges+1, sz.SyncChurn),
		Unit: "MiB", Ferry: spreadOf([]float64{mib(hwm)}), Goal: goal{kind: "value<", x: 150, unit: "MiB"}})
	rep.add(row{Figure: fmt.Sprintf("sync --watch: RSS after the last of %d churn rounds of 1 %% (%d files each, every %s) (vs after the first)", rounds, per, every),
		Unit: "MiB", Ferry: spreadOf([]float64{last}), Raw: spreadOf([]float64{first}), Ratio: spreadOf([]float64{last / first}), Goal: goal{kind: "ratio<=", x: 1.1}})
	rep.note("Sync --watch: defaults (debounce 2 s, --min-age 2 s), --concurrency 4. A change at idle: one file rewritten (same size, new content) 0.5 s after the previous change was delivered; accepted = its accepted JSON event read from the process's output, delivered = GET /v1/jobs/{id} polled every 50 ms until SUCCESS. RSS: VmRSS from /proc/<pid>/status, %.1f MiB idle after the first pass; churn rounds every %s over %s, each rewriting %d random files and waiting until all were accepted; RSS read after each round: %s MiB; at the end %s.",
		mib(idle), every, sz.SyncChurn, per, rssList(rss), split)
	return nil
}

// churnRound rewrites per random files and waits until each was accepted.
func (s *syncBench) churnRound(ctx context.Context, w *watchRun, rng *rand.Rand, per int) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	picked := map[int]bool{}
	var chans []<-chan accepted
	for len(picked) < per {
		i := rng.IntN(s.n)
		if picked[i] {
			continue
		}
		picked[i] = true
		chans = append(chans, w.expect(syncRel(i)))
		if _, err := s.change(i); err != nil {
			return err
		}
	}
	for _, c := range chans {
		select {
		case <-c:
		case <-w.sp.exited:
			return errors.New("ferry sync --watch exited; see " + w.sp.logPath)
		case <-ctx.Done():
			return fmt.Errorf("changes not accepted: %w; see %s", ctx.Err(), w.sp.logPath)
		}
	}
	return nil
}

func rssList(rss []int64) string {
	s := ""
	for i, b := range rss {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%.1f", float64(b)/(1<<20))
	}
	return s
}

// rssSplit says how much of a process's resident set is anonymous (the
// Go heap and stacks) and how much file-backed (the binary, and the
// index's memory map).
func rssSplit(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "no split of RSS"
	}
	var parts []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && (k == "RssAnon" || k == "RssFile") {
			parts = append(parts, k+" "+strings.TrimSpace(v))
		}
	}
	return strings.Join(parts, ", ")
}
