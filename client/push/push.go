// Package push moves document trees into ferry, in the spirit of rclone
// copy: it walks folders (or reads a manifest), checks every file against
// the target, uploads through the API, shows progress, and can be
// interrupted and started again at any point.
//
// Every file goes into a batch under an idempotency key made of the batch,
// the file's path and its content hash (Key). A push started again asks the
// server for the keys the batch already holds and skips those files without
// sending their bytes; a file whose answer was lost mid-flight is sent
// again and the server returns the job it already made for that key. A
// batch thus ends with exactly one job per file, however often the push was
// interrupted, and a file whose content changed gets a new job.
//
// Every upload declares its SHA-256 (the file is hashed before it is
// sent). With Documents, each file is also a document at the target, keyed
// by its path: a changed file becomes a new version of the same remote
// document rather than another one, and an unchanged one sends no byte.
package push

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/client"
)

// Defaults of Options.
const (
	ConcurrencyDefault      = 4
	PollIntervalDefault     = time.Second
	LineIntervalDefault     = 5 * time.Second
	UploadAttemptsDefault   = 6
	deliveryFailuresListed  = 1000
	uploadBackoffInitial    = time.Second
	uploadBackoffMax        = 16 * time.Second
	barRefreshInterval      = 150 * time.Millisecond
	maxDistinctParamsChecks = 10000
)

// Errors Run returns, wrapped with details.
var (
	// ErrInterrupted means the context ended before every file was
	// through; running the same push again resumes it.
	ErrInterrupted = errors.New("push interrupted")
	// ErrIncomplete means some files were not accepted, or (with Wait)
	// some jobs of the batch did not end SUCCESS.
	ErrIncomplete = errors.New("push incomplete")
)

// Options configure a push.
type Options struct {
	// Paths are the files and folders to push. Files in a folder are
	// pushed under their path relative to it; a file under its name.
	Paths []string
	// Manifest is a CSV file listing the files instead (see readManifest).
	Manifest string
	// Target is the target's name; it may be empty when Batch names an
	// existing batch object.
	Target string
	// Batch is the batch's name. Empty derives one from the paths and the
	// target, so that the same command resumes the same batch.
	Batch string
	// Params are the batch's parameters; manifest columns override them
	// per file.
	Params map[string]string
	// Include and Exclude are glob patterns on the files' paths (Filter).
	Include, Exclude []string
	// FollowSymlinks follows symbolic links found in folders; by default
	// they are skipped and counted.
	FollowSymlinks bool
	// Concurrency is how many files are hashed and sent at once.
	Concurrency int
	// DryRun checks and lists what would be sent, and sends nothing.
	DryRun bool
	// Wait watches the batch after the uploads until every job is final.
	Wait bool
	// PollInterval is how often Wait asks for the batch's summary.
	PollInterval time.Duration
	// UploadAttempts is how many times a file is sent when the server
	// cannot be reached or answers 5xx or 429.
	UploadAttempts int
	// Out receives the dry run's listing and the summaries.
	Out io.Writer
	// Progress receives the progress display; nil shows none.
	Progress io.Writer
	// Terminal draws progress bars on Progress; otherwise a line is
	// printed every LineInterval.
	Terminal     bool
	LineInterval time.Duration
	// OnFile, if set, is called (from several goroutines) as each file is
	// through.
	OnFile func(FileResult)
	// SessionThreshold is the size from which a file goes through an
	// upload session, in parts (large.go); SessionThresholdDefault if
	// zero, never if negative.
	SessionThreshold int64
	// ParallelParts is how many parts of one large file are in flight.
	ParallelParts int
	// Documents makes each file a document at the target, keyed by its
	// Path (relative to the folder pushed): a changed file is a new
	// version of it, whether it goes in one request or through an upload
	// session.
	Documents bool
}

func (o Options) withDefaults() Options {
	o.Concurrency = cmp.Or(o.Concurrency, ConcurrencyDefault)
	o.PollInterval = cmp.Or(o.PollInterval, PollIntervalDefault)
	o.LineInterval = cmp.Or(o.LineInterval, LineIntervalDefault)
	o.UploadAttempts = cmp.Or(o.UploadAttempts, UploadAttemptsDefault)
	o.SessionThreshold = cmp.Or(o.SessionThreshold, SessionThresholdDefault)
	o.ParallelParts = cmp.Or(o.ParallelParts, ParallelPartsDefault)
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Params == nil {
		o.Params = map[string]string{}
	}
	return o
}

// Outcomes of a file.
const (
	OutcomeUploaded = "uploaded"
	OutcomeSkipped  = "already accepted"
	OutcomeFailed   = "failed"
)

// FileResult is what became of one file.
type FileResult struct {
	Path    string
	Outcome string
	JobID   string
	Err     string
}

// Result is what a push did.
type Result struct {
	Batch  string
	Target string
	// Files and Bytes are what the push covered (after the filters).
	Files int
	Bytes int64
	// Uploaded files were sent and accepted; Skipped ones were accepted
	// by an earlier push and not sent again.
	Uploaded, Skipped int
	// SentBytes is how many bytes of files were sent.
	SentBytes int64
	// Problems are the files not accepted, and those that changed while
	// they were sent, by path.
	Problems []Problem
	// Symlinks is how many symbolic links were skipped.
	Symlinks int
	// Delivery is the batch's summary once every job was final (Wait).
	Delivery *apitypes.BatchSummary
	// Undelivered are the batch's FAILED and CANCELED jobs (Wait), at
	// most a thousand.
	Undelivered []apitypes.ReportRow
	// FailureGroups are the batch's FAILED jobs by reason (Wait), as the
	// server groups them.
	FailureGroups []apitypes.FailureGroup
}

// Failed is how many files were not accepted.
func (r Result) Failed() int {
	n := 0
	for _, p := range r.Problems {
		if p.Kind != ProblemChanged {
			n++
		}
	}
	return n
}

// Key is the idempotency key of a file in a batch: the SHA-256 of the
// batch name, the file's path and the hex SHA-256 of its content.
func Key(batch, path, contentSHA256 string) string {
	h := sha256.New()
	h.Write([]byte(batch))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write([]byte(contentSHA256))
	return hex.EncodeToString(h.Sum(nil))
}

// Run pushes the files o names. It returns ErrInterrupted when ctx ends
// first, ErrIncomplete when some files were not accepted (or, with Wait,
// not delivered), and another error when the push could not start.
func Run(ctx context.Context, c *client.Client, o Options) (Result, error) {
	o = o.withDefaults()
	filter, err := NewFilter(o.Include, o.Exclude)
	if err != nil {
		return Result{}, err
	}
	var f found
	switch {
	case o.Manifest != "" && len(o.Paths) > 0:
		return Result{}, errors.New("give paths or a manifest, not both")
	case o.Manifest != "":
		if f, err = readManifest(o.Manifest, filter); err != nil {
			return Result{}, err
		}
	case len(o.Paths) == 0:
		return Result{}, errors.New("nothing to push: give paths or --manifest")
	default:
		f = walk(o.Paths, filter, o.FollowSymlinks)
	}
	p := &pusher{c: c, o: o, files: f.files, problems: f.problems}
	p.res.Symlinks = f.symlinks
	if err := p.resolve(ctx); err != nil {
		return p.result(), err
	}
	p.res.Files = len(p.files) + countKind(p.problems, ProblemUnreadable, ProblemNotRegular)
	for _, file := range p.files {
		p.res.Bytes += file.Size
	}
	if err := p.check(ctx); err != nil {
		return p.result(), err
	}
	if o.DryRun {
		return p.dryRun(ctx)
	}
	if err := p.upload(ctx); err != nil {
		return p.result(), err
	}
	if o.Wait {
		if err := p.wait(ctx); err != nil {
			return p.result(), err
		}
	}
	return p.finish()
}

// pusher is one push under way.
type pusher struct {
	c     *client.Client
	o     Options
	limit int64 // the size limit of a file, 0 for none
	// limitOf says whose limit it is: the target's or the server's.
	limitOf string
	// batchMu guards batchMade: the batch object is made when the first
	// file is about to be sent, so that a push that sends nothing leaves
	// no empty batch behind.
	batchMu   sync.Mutex
	batchMade bool
	batchErr  error
	// files are those still to push; problems those that will not be.
	files    []File
	mu       sync.Mutex
	problems []Problem
	accepted map[string]bool
	res      Result
	meter    meter

	done, skipped, failed, uploaded atomic.Int64
	sent, toSend                    atomic.Int64
}

func (p *pusher) problem(pr Problem) {
	p.mu.Lock()
	p.problems = append(p.problems, pr)
	p.mu.Unlock()
}

func (p *pusher) result() Result {
	r := p.res
	r.Uploaded, r.Skipped = int(p.uploaded.Load()), int(p.skipped.Load())
	r.SentBytes = p.sent.Load()
	p.mu.Lock()
	r.Problems = slices.Clone(p.problems)
	p.mu.Unlock()
	sort.SliceStable(r.Problems, func(i, j int) bool { return r.Problems[i].Path < r.Problems[j].Path })
	return r
}

// resolve finds the target (from the batch object if none was named), its
// size limit and the batch's name.
func (p *pusher) resolve(ctx context.Context) error {
	p.res.Batch = p.o.Batch
	if p.res.Batch == "" {
		p.res.Batch = defaultBatchName(p.o)
	}
	if err := apitypes.CheckBatchName(p.res.Batch); err != nil {
		return err
	}
	p.res.Target = p.o.Target
	if p.res.Target == "" {
		sum, err := p.c.Batch(ctx, p.res.Batch)
		switch {
		case client.IsNotFound(err) || (err == nil && sum.Target == ""):
			return fmt.Errorf("--target is required: batch %q does not exist yet", p.res.Batch)
		case err != nil:
			return err
		}
		p.res.Target = sum.Target
	}
	ts, err := p.c.Targets(ctx)
	if err != nil {
		return err
	}
	var names []string
	for _, t := range ts {
		names = append(names, t.Name)
		if t.Name == p.res.Target {
			p.setLimit(t)
			return nil
		}
	}
	return fmt.Errorf("unknown target %q (configured: %s)", p.res.Target, strings.Join(names, ", "))
}

// setLimit keeps the smaller of the target's limit and the server's.
func (p *pusher) setLimit(t apitypes.Target) {
	p.limit, p.limitOf = t.MaxFileBytes, "target "+t.Name+"'s"
	if t.MaxUploadBytes > 0 && (p.limit == 0 || t.MaxUploadBytes < p.limit) {
		p.limit, p.limitOf = t.MaxUploadBytes, "the server's"
	}
}

// defaultBatchName names the batch after the first path, with a hash of
// the target and every path, so that the same command run again from the
// same place resumes the same batch.
func defaultBatchName(o Options) string {
	srcs := o.Paths
	if o.Manifest != "" {
		srcs = []string{o.Manifest}
	}
	h := sha256.New()
	h.Write([]byte(o.Target))
	for _, s := range srcs {
		abs, err := filepath.Abs(s)
		if err != nil {
			abs = s
		}
		h.Write([]byte{0})
		h.Write([]byte(abs))
	}
	base := "push"
	if abs, err := filepath.Abs(srcs[0]); err == nil {
		if b := strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs)); b != "" && b != "/" && b != "." {
			base = b
		}
	}
	base = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '/' {
			return '_'
		}
		return r
	}, base)
	if len(base) > 100 {
		base = base[:100]
	}
	return base + "-" + hex.EncodeToString(h.Sum(nil))[:8]
}

// check sets aside files over the target's limit and files whose
// parameters the target refuses. A parameter refusal shared by every file
// stops the push.
func (p *pusher) check(ctx context.Context) error {
	var keep []File
	for _, f := range p.files {
		if p.limit > 0 && f.Size > p.limit {
			p.problem(Problem{Path: f.Path, Kind: ProblemTooLarge, Err: fmt.Sprintf(
				"%d bytes, over %s limit of %d bytes (%s)", f.Size, p.limitOf, p.limit, bytesText(p.limit))})
			continue
		}
		keep = append(keep, f)
	}
	p.files = keep
	refusals, err := p.checkParams(ctx)
	if err != nil {
		return err
	}
	if len(refusals) == 0 {
		return nil
	}
	keep = nil
	for _, f := range p.files {
		if why, ok := refusals[paramsKey(f.Params)]; ok {
			p.problem(Problem{Path: f.Path, Kind: ProblemParams, Err: why})
			continue
		}
		keep = append(keep, f)
	}
	if len(keep) == 0 && len(p.files) > 0 && !p.o.DryRun {
		return fmt.Errorf("target %s refuses the parameters: %s", p.res.Target, refusals[paramsKey(p.files[0].Params)])
	}
	p.files = keep
	return nil
}

// checkParams asks the server about each distinct set of per-file
// parameters and returns the refusals by paramsKey.
func (p *pusher) checkParams(ctx context.Context) (map[string]string, error) {
	sets := map[string]map[string]string{}
	for _, f := range p.files {
		if len(sets) >= maxDistinctParamsChecks {
			break // the server checks every upload anyway
		}
		sets[paramsKey(f.Params)] = f.Params
	}
	if len(p.files) == 0 {
		sets[""] = nil
	}
	refusals := map[string]string{}
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, p.o.Concurrency)
	var wg sync.WaitGroup
	for k, params := range sets {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			merged := maps.Clone(p.o.Params)
			maps.Copy(merged, params)
			_, err := p.c.CheckTarget(ctx, p.res.Target, p.res.Batch, merged)
			mu.Lock()
			defer mu.Unlock()
			var ce *client.Error
			switch {
			case errors.As(err, &ce) && ce.StatusCode == 422 && ce.Code == "invalid_params":
				refusals[k] = ce.Message
			case err != nil && firstErr == nil:
				firstErr = err
			}
		})
	}
	wg.Wait()
	return refusals, firstErr
}

// paramsKey identifies a set of parameters.
func paramsKey(params map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(params)) {
		fmt.Fprintf(&b, "%q=%q;", k, params[k])
	}
	return b.String()
}

func countKind(ps []Problem, kinds ...string) int {
	n := 0
	for _, p := range ps {
		if slices.Contains(kinds, p.Kind) {
			n++
		}
	}
	return n
}
