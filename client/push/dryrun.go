package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/ferry-relay/ferry/internal/termtext"
)

// dryRun checks that each file can be read and lists what would be sent.
func (p *pusher) dryRun(ctx context.Context) (Result, error) {
	w := p.o.Out
	if sum, err := p.c.Batch(ctx, p.res.Batch); err == nil {
		fmt.Fprintf(w, "batch %q exists with %d jobs; files it holds already would be skipped\n", p.res.Batch, sum.Total.Files)
	}
	var bytes int64
	var sendable []File
	for _, f := range p.files {
		if err := readable(f.Local); err != nil {
			p.problem(Problem{Path: f.Path, Kind: ProblemUnreadable, Err: err.Error()})
			continue
		}
		sendable = append(sendable, f)
		bytes += f.Size
		fmt.Fprintf(w, "send       %10s  %s\n", bytesText(f.Size), termtext.Clean(f.Path))
	}
	r := p.result()
	for _, pr := range r.Problems {
		fmt.Fprintln(w, termtext.Clean(fmt.Sprint(pr)))
	}
	fmt.Fprintf(w, "dry run: %d of %d files (%s) would be sent to target %s in batch %q",
		len(sendable), r.Files, bytesText(bytes), r.Target, r.Batch)
	if r.Symlinks > 0 {
		fmt.Fprintf(w, "; %d symbolic links skipped (--follow-symlinks follows them)", r.Symlinks)
	}
	fmt.Fprintf(w, "; %s; nothing was sent\n", problemCounts(r.Problems))
	if len(r.Problems) > 0 {
		return r, fmt.Errorf("%w: dry run found %d problems", ErrIncomplete, len(r.Problems))
	}
	return r, nil
}

// readable checks that a file can be opened and read.
func readable(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Read(make([]byte, 1)); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func problemCounts(ps []Problem) string {
	if len(ps) == 0 {
		return "no problems"
	}
	by := map[string]int{}
	for _, p := range ps {
		by[p.Kind]++
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(by)) {
		parts = append(parts, fmt.Sprintf("%d %s", by[k], k))
	}
	return fmt.Sprintf("%d problems (%s)", len(ps), strings.Join(parts, ", "))
}
