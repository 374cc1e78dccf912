package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-relay/ferry/queue"
	"github.com/ferry-relay/ferry/storage"
)

// Report is what a run found. Problems lists every broken promise; a run
// passes when it is empty.
type Report struct {
	Seed     uint64
	Files    int
	Duration time.Duration
	Faults   map[faultKind]int

	Accepted      int   // files the API accepted (202, or 200 for a retry)
	Rejected      int   // files the API refused (4xx): none expected
	UploadRetries int64 // upload attempts that failed and were retried
	CutUploads    int   // upload attempts cut mid-body (the API was killed)
	CutWithJob    int   // of those, how many left a job: must be 0

	Jobs             int // job rows
	JobsWithoutFile  int // jobs no accepted upload answered for: must be 0
	JobsMismatched   int // jobs whose size or SHA-256 is not the file's: must be 0
	Success          int
	Superseded       int // versions overtaken by a newer one before they started (never delivered)
	Failed           int
	FailedExpected   int // FAILED on the refusing target
	FailedUnexpected int
	Stuck            int // jobs not SUCCESS, FAILED or CANCELED at the end: must be 0
	StuckByStatus    map[string]int

	Missing        int // accepted files the target never received: must be 0
	Corrupt        int // deliveries whose bytes are not the file's: must be 0
	Extra          int // deliveries beyond the first, per job
	ExtraExplained int // of those, explained by an attempt cut short (worker killed or stopped)
	WorkerKills    int
	WorkerStops    int
	HandedBack     int // deliveries handed back by SIGTERMed workers
	Abandoned      int // attempts recovered after their lease expired
	AbandonedKill  int // of those, by a worker killed with SIGKILL
	Outcomes       map[string]int

	Incomplete int    // incomplete multipart uploads left in MinIO
	Orphans    int    // stored objects without a job
	QueueLeft  uint64 // messages left in the stream

	// On a cluster: its shape, the NATS server that led the stream and was
	// killed, the drive taken away, the stream's state at the end.
	Topology     string
	LeaderKilled string
	DriveRemoved string
	StreamEnd    string
	// PeakInFlight is the most deliveries a target saw at once, across
	// every worker process; MaxInFlight its max_in_flight.
	PeakInFlight map[string]int
	MaxInFlight  map[string]int
	targets      []string // the targets uploaded to, in order

	// Docs is the check of documents and their versions, with
	// Config.Versions (report_documents.go).
	Docs *docsReport

	// Neighbour is the outcome of the second installation on the same
	// NATS server, if one ran.
	Neighbour string

	Problems []string
	Notes    []string
}

type jobRow struct {
	id, target, status, key, sha, lastError string
	size                                    int64
}

// gather checks the end state of a run against what was uploaded.
func gather(ctx context.Context, c *cluster, fs *faults, up *uploader, files []file) (*Report, error) {
	r := &Report{Seed: c.cfg.Seed, Files: len(files), Faults: map[faultKind]int{},
		StuckByStatus: map[string]int{}, Outcomes: map[string]int{}}
	fs.mu.Lock()
	for k, n := range fs.counts {
		r.Faults[k] = n
	}
	r.WorkerKills, r.WorkerStops, r.HandedBack = fs.counts[faultWorkerKill], fs.counts[faultWorkerTerm], fs.handedBack
	r.Problems = append(r.Problems, fs.problems...)
	killed := fs.killed
	r.LeaderKilled, r.DriveRemoved = fs.leaderKilled, fs.driveRemoved
	fs.mu.Unlock()
	r.Topology = c.topology()
	r.PeakInFlight, r.MaxInFlight = map[string]int{}, c.cfg.MaxInFlight
	peaks := c.outage.peaks()
	for _, t := range c.targetPaths() {
		r.PeakInFlight[t.name] = peaks[t.path]
		r.targets = append(r.targets, t.name)
		if limit := c.cfg.MaxInFlight[t.name]; limit > 0 && peaks[t.path] > limit {
			r.Problems = append(r.Problems, fmt.Sprintf("target %s had %d deliveries in flight at once, above its max_in_flight %d",
				t.name, peaks[t.path], limit))
		}
	}

	up.mu.Lock()
	results := up.results
	r.Accepted, r.Rejected = len(results), len(up.rejected)
	for idx, why := range up.rejected {
		r.Problems = append(r.Problems, fmt.Sprintf("upload of %s refused: %s", files[idx].name, why))
	}
	cut := slices.Clone(up.cut)
	up.mu.Unlock()
	r.UploadRetries, r.CutUploads = up.failedAttempts.Load(), len(cut)
	if r.Accepted+r.Rejected < len(files) {
		r.Problems = append(r.Problems, fmt.Sprintf("%d files never accepted before the deadline", len(files)-r.Accepted-r.Rejected))
	}

	// Jobs.
	rows, err := c.db.Query(ctx, `SELECT id::text, target, status, coalesce(idempotency_key, ''), sha256, size,
		coalesce(last_error, '') FROM jobs`)
	if err != nil {
		return nil, err
	}
	jobs := map[string]jobRow{}
	byKey := map[string]jobRow{}
	for rows.Next() {
		var j jobRow
		if err := rows.Scan(&j.id, &j.target, &j.status, &j.key, &j.sha, &j.size, &j.lastError); err != nil {
			return nil, err
		}
		jobs[j.id], byKey[j.key] = j, j
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	r.Jobs = len(jobs)
	for _, cu := range cut {
		if j, ok := byKey[cu.key]; ok {
			r.CutWithJob++
			f := files[cu.file]
			var created time.Time
			_ = c.db.QueryRow(ctx, `SELECT created_at FROM jobs WHERE id = $1`, j.id).Scan(&created)
			if r.CutWithJob > 3 {
				continue
			}
			r.Problems = append(r.Problems, fmt.Sprintf("an upload cut mid-body at %s (%s) left job %s created at %s, "+
				"%d of %d bytes, same SHA-256: %v", cu.at.Format("15:04:05.000"), cu.err, j.id,
				created.Format("15:04:05.000"), j.size, f.size, j.sha == f.sha256))
		}
	}
	if r.CutWithJob > 3 {
		r.Problems = append(r.Problems, fmt.Sprintf("... %d uploads cut mid-body left a job in all", r.CutWithJob))
	}
	fileOfJob := map[string]file{}
	for idx, a := range results {
		fileOfJob[a.jobID] = files[idx]
	}
	var unexpected []string
	for _, j := range jobs {
		f, ok := fileOfJob[j.id]
		if !ok {
			r.JobsWithoutFile++
			if r.JobsWithoutFile <= 3 {
				r.Notes = append(r.Notes, fmt.Sprintf("job %s (key %s, %d bytes) answers no accepted upload", j.id, j.key, j.size))
			}
			continue
		}
		if j.sha != f.sha256 || j.size != int64(f.size) || j.target != f.target {
			r.JobsMismatched++
		}
		switch j.status {
		case "SUCCESS":
			r.Success++
			if j.target == targetRefuse {
				r.Problems = append(r.Problems, "a job of the refusing target succeeded: "+j.id)
			}
		case "FAILED":
			r.Failed++
			if j.target == targetRefuse {
				r.FailedExpected++
			} else {
				r.FailedUnexpected++
				unexpected = append(unexpected, j.id+": "+j.lastError)
			}
		case "SUPERSEDED":
			r.Superseded++
			if f.doc == "" {
				r.Problems = append(r.Problems, "a job without a document was superseded: "+j.id)
			}
		case "CANCELED":
			r.Problems = append(r.Problems, "a job was canceled: "+j.id)
		default:
			r.Stuck++
			r.StuckByStatus[j.status]++
		}
	}
	if r.JobsWithoutFile > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d jobs exist for no accepted upload", r.JobsWithoutFile))
	}
	if r.JobsMismatched > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d jobs differ from their file (size, SHA-256 or target)", r.JobsMismatched))
	}
	if r.FailedUnexpected > 0 {
		slices.Sort(unexpected)
		r.Problems = append(r.Problems, fmt.Sprintf("%d jobs FAILED on a target that accepts, e.g. %s",
			r.FailedUnexpected, strings.Join(unexpected[:min(3, len(unexpected))], "; ")))
	}
	if r.Stuck > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d jobs stuck in a non-final state %v", r.Stuck, r.StuckByStatus))
		r.Problems = append(r.Problems, diagnoseStuck(ctx, c)...)
	}

	// Attempts: which jobs a worker cut short, by dying (ABANDONED once
	// the lease expired) or at shutdown (INTERRUPTED and handed back).
	// Either may have reached the target: one extra delivery each at most.
	cutShort := map[string]int{}
	arows, err := c.db.Query(ctx, `SELECT job_id::text, worker, outcome FROM attempts`)
	if err != nil {
		return nil, err
	}
	for arows.Next() {
		var id, worker, outcome string
		if err := arows.Scan(&id, &worker, &outcome); err != nil {
			return nil, err
		}
		r.Outcomes[outcome]++
		if outcome == "INTERRUPTED" {
			cutShort[id]++
		}
		if outcome == "ABANDONED" {
			r.Abandoned++
			cutShort[id]++
			if owner, _, _ := strings.Cut(worker, "/"); killed[owner] {
				r.AbandonedKill++
			}
		}
	}
	if err := arows.Err(); err != nil {
		return nil, err
	}

	// What the target received.
	docs := map[string][]string{} // job id -> SHA-256 of each delivery
	for _, d := range c.sink.Documents() {
		docs[d.JobID] = append(docs[d.JobID], d.SHA256)
	}
	for idx, a := range results {
		f := files[idx]
		got := docs[a.jobID]
		if f.target != targetRefuse && len(got) == 0 && jobs[a.jobID].status != "SUPERSEDED" {
			r.Missing++
		}
		for _, sha := range got {
			if sha != f.sha256 {
				r.Corrupt++
			}
		}
		if n := len(got) - 1; n > 0 {
			r.Extra += n
			r.ExtraExplained += min(n, cutShort[a.jobID])
			if n > cutShort[a.jobID] {
				r.Problems = append(r.Problems, fmt.Sprintf("job %s delivered %d times with %d attempts cut short",
					a.jobID, len(got), cutShort[a.jobID]))
			}
		}
	}
	for id := range docs {
		if _, ok := jobs[id]; !ok {
			r.Problems = append(r.Problems, "the target received a file of no job: "+id)
		}
	}
	if r.Missing > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d accepted files never reached the target", r.Missing))
	}
	if r.Corrupt > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d deliveries carried the wrong bytes", r.Corrupt))
	}
	// The promise is per delivery cut short, checked per job above: a
	// worker killed with n deliveries in flight may cause n extra copies
	// (the target may finish a request whose client died), so the total may
	// exceed the number of kills. It may not exceed the deliveries cut short.
	if r.Extra > r.Abandoned+r.HandedBack {
		r.Problems = append(r.Problems, fmt.Sprintf("%d extra deliveries for %d deliveries cut short",
			r.Extra, r.Abandoned+r.HandedBack))
	}

	if c.cfg.Versions > 1 {
		if err := r.checkDocuments(ctx, c, files); err != nil {
			return nil, err
		}
	}

	// Storage and queue leftovers.
	if err := r.storageLeftovers(ctx, c, jobs); err != nil {
		r.Notes = append(r.Notes, "could not list the bucket: "+err.Error())
	}
	if q, err := c.connectQueue(ctx, "chaos-report"); err == nil {
		r.QueueLeft, _ = q.Pending(ctx)
		if len(c.nats) > 1 {
			if h, err := q.StreamHealth(ctx); err == nil {
				r.StreamEnd = h.String()
			} else {
				r.StreamEnd = err.Error()
			}
		}
		q.Close()
	}
	return r, nil
}

// diagnoseStuck describes a few stuck jobs: their row, and whether the
// queue holds a message for them.
func diagnoseStuck(ctx context.Context, c *cluster) []string {
	rows, err := c.db.Query(ctx, `SELECT id::text, target, status, attempts, created_at, updated_at,
			next_attempt_at, enqueued_at, coalesce(last_error, '')
		FROM jobs WHERE status NOT IN ('SUCCESS', 'FAILED', 'CANCELED', 'SUPERSEDED') ORDER BY id LIMIT 5`)
	if err != nil {
		return []string{"diagnosing stuck jobs: " + err.Error()}
	}
	defer rows.Close()
	var js jetstream.JetStream
	var q *queue.Queue
	if nc, err := nats.Connect(c.natsURL()); err == nil {
		defer nc.Close()
		js, _ = jetstream.New(nc)
	}
	if qq, err := c.connectQueue(ctx, "chaos-diagnose"); err == nil {
		defer qq.Close()
		q = qq
	}
	var out []string
	for rows.Next() {
		var id, target, status, lastErr string
		var attempts int
		var created, updated, next time.Time
		var enqueued *time.Time
		if err := rows.Scan(&id, &target, &status, &attempts, &created, &updated, &next, &enqueued, &lastErr); err != nil {
			return append(out, err.Error())
		}
		enq := "never"
		if enqueued != nil {
			enq = enqueued.Sub(updated).Round(time.Millisecond).String() + " after the last update"
		}
		msg := "unknown"
		if js != nil && q != nil {
			if s, err := js.Stream(ctx, q.StreamName()); err == nil {
				_, err := s.GetLastMsgForSubject(ctx, q.Subject(target, id))
				switch {
				case err == nil:
					msg = "yes"
				case errors.Is(err, jetstream.ErrMsgNotFound):
					msg = "no"
				default:
					msg = err.Error()
				}
			}
		}
		out = append(out, fmt.Sprintf("stuck job %s (%s): %s after %d attempts, created %s, updated %s, due %s, "+
			"published %s, message in queue: %s, last error: %q", id, target, status, attempts,
			created.Format("15:04:05.000"), updated.Format("15:04:05.000"), next.Format("15:04:05.000"), enq, msg, lastErr))
	}
	return out
}

// storageLeftovers counts incomplete multipart uploads and objects that
// belong to no job.
func (r *Report) storageLeftovers(ctx context.Context, c *cluster, jobs map[string]jobRow) error {
	st, err := storage.Open(ctx, c.s3)
	if err != nil {
		return err
	}
	cl := st.Client()
	for up := range cl.ListIncompleteUploads(ctx, c.s3.Bucket, "", true) {
		if up.Err != nil {
			return up.Err
		}
		r.Incomplete++
	}
	keys := map[string]bool{}
	for _, j := range jobs {
		keys[storage.KeyFor(j.id)] = true
	}
	for obj := range cl.ListObjects(ctx, c.s3.Bucket, minio.ListObjectsOptions{Prefix: "objects/", Recursive: true}) {
		if obj.Err != nil {
			return obj.Err
		}
		if !keys[obj.Key] {
			r.Orphans++
		}
	}
	if r.Orphans > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d stored files belong to no job: an API process died between "+
			"storing the bytes and recording the job; the sweeper removes them once an hour old (sweeper.AbandonedUploadsAge)", r.Orphans))
	}
	return nil
}

// removeBucket empties and removes a run's bucket.
func removeBucket(cfg storage.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := storage.Open(ctx, cfg)
	if err != nil {
		return
	}
	cl := st.Client()
	objs := cl.ListObjects(ctx, cfg.Bucket, minio.ListObjectsOptions{Recursive: true})
	for range cl.RemoveObjects(ctx, cfg.Bucket, objs, minio.RemoveObjectsOptions{}) {
	}
	_, _ = st.AbortIncomplete(ctx, "", 0)
	_ = cl.RemoveBucket(ctx, cfg.Bucket)
}
