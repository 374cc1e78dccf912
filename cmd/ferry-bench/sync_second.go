package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// second times the second sync of the unchanged tree against a bare
// stat walk, alternating which goes first.
func (s *syncBench) second(ctx context.Context, rep *report) error {
	e := s.e
	var ferry, walk []float64
	for r := range e.cfg.Reps {
		var df, dw time.Duration
		for k := range 2 {
			var err error
			if (k+r)%2 == 0 {
				df, err = s.secondOnce(ctx, r)
			} else {
				dw, err = timeShell(ctx, `find "$1" -printf '%s %T@\n' > /dev/null`, s.dir)
			}
			if err != nil {
				return err
			}
		}
		ferry, walk = append(ferry, ms(df)), append(walk, ms(dw))
		e.cfg.progress("sync: second sync %s, find -printf %s", df.Round(time.Millisecond), dw.Round(time.Millisecond))
	}
	rep.add(row{Figure: fmt.Sprintf("sync: second sync of the unchanged %s files, 0 hashed, 0 uploads (vs find -printf '%%s %%T@')", count(s.n)),
		Unit: "ms", Ferry: spreadOf(ferry), Raw: spreadOf(walk), Ratio: spreadOf(ratios(ferry, walk)), Goal: goal{kind: "ratio<=", x: 2}})
	return nil
}

// secondOnce runs one sync of the unchanged tree, checks from its summary
// that it hashed and sent nothing, and returns its wall time.
func (s *syncBench) secondOnce(ctx context.Context, r int) (time.Duration, error) {
	var mu sync.Mutex
	var sum *syncEvent
	sp, err := s.startSync(fmt.Sprintf("second-%d", r), func(ev syncEvent, _ time.Time) {
		if ev.Event == "summary" {
			mu.Lock()
			sum = &ev
			mu.Unlock()
		}
	}, "--min-age", syncMinAge.String())
	if err != nil {
		return 0, err
	}
	if err := sp.wait(ctx); err != nil {
		return 0, err
	}
	mu.Lock()
	defer mu.Unlock()
	got, err := summaryOf(sum)
	if err != nil {
		return 0, err
	}
	if got.Hashed != 0 || got.HashedBytes != 0 || got.Accepted != 0 || got.Pending != 0 || got.Tracked != s.n {
		return 0, fmt.Errorf("unchanged tree: want 0 hashed, 0 accepted, 0 pending, %d tracked; summary %+v", s.n, got)
	}
	return sp.ended.Sub(sp.started), nil
}
