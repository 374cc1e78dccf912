package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Config is one chaos run.
type Config struct {
	// FerryBin is the ferry binary to run.
	FerryBin string
	// Files is how many files to upload; MaxFileBytes the largest.
	// Versions > 1 makes every file a document sent in that many versions
	// (uploader_versions.go), to the document targets instead.
	Files        int
	Versions     int
	MaxFileBytes int
	// Uploaders is how many clients upload at once; UploadFor is the time
	// the uploads are spread over.
	Uploaders int
	UploadFor time.Duration
	// Workers is how many worker processes run.
	Workers int
	// Seed makes the files and the random faults repeatable.
	Seed uint64
	// Script, when set, is the faults to inject; otherwise random faults
	// come every FaultEvery[0] to FaultEvery[1] until the uploads are done
	// and ChaosTail after.
	Script     []fault
	FaultEvery [2]time.Duration
	FaultKinds []faultKind // random faults of these kinds only, when set
	ChaosTail  time.Duration
	// Settle bounds the wait for every job to end after the faults stop.
	Settle time.Duration
	// FailRate is the share of the sink's answers that are a 503.
	FailRate float64
	// SlowDelay is how long the slow target takes per file.
	SlowDelay time.Duration
	// RefuseShare, SlowShare and TrickleShare are the shares of files for
	// the refusing target, for the slow target, and sent slowly.
	RefuseShare, SlowShare, TrickleShare float64
	// MaxAttempts of every target.
	MaxAttempts int
	// Lease, AckWait and ShutdownGrace of the ferry processes.
	Lease, AckWait, ShutdownGrace time.Duration
	// S3 is the shared MinIO; MinIOBin, when set, runs a private one
	// instead, which the faults may kill.
	S3Endpoint, S3AccessKey, S3SecretKey string
	MinIOBin                             string
	// KeepDir keeps the run directory (process logs) at the end.
	KeepDir bool

	// The shape of the installation (zero values: one of each, as make
	// chaos runs it). Dir is the run directory (default: a temporary one);
	// DatabaseURL an existing Postgres database instead of a private
	// cluster; NATSNodes the servers of a NATS cluster, QueueReplicas the
	// stream's replicas; APIs the API processes; MinIODrives the drives of
	// a private MinIO erasure set.
	Dir           string
	DatabaseURL   string
	NATSNodes     int
	QueueReplicas int
	APIs          int
	MinIODrives   int
	// Serve runs the API processes as ferry serve: each also delivers
	// (from its recent-files memory what it just stored) and sweeps, beside
	// the Workers worker processes; an API killed is then a worker killed
	// too.
	Serve bool
	// MaxInFlight is each target's max_in_flight (none when absent),
	// checked against what the target saw at once.
	MaxInFlight map[string]int
	// Neighbour runs a second ferry installation (its own database,
	// bucket and target, the same target names) on the same NATS server,
	// uploading Files/4 small files meanwhile: neither may take the
	// other's jobs, and its own must all be delivered too.
	Neighbour bool
}

// run brings the cluster up, uploads while injecting faults, waits for the
// jobs to settle and reports.
func run(ctx context.Context, cfg Config, log *slog.Logger) (rep *Report, err error) {
	begin := time.Now()
	c, err := startCluster(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil || (rep != nil && len(rep.Problems) > 0) {
			c.cfg.KeepDir = true
			log.Warn("keeping the run directory", "dir", c.dir)
		}
		c.close()
	}()
	files := makeFiles(cfg.Files, cfg.MaxFileBytes, cfg.Seed, cfg.RefuseShare, cfg.SlowShare, cfg.TrickleShare)
	if cfg.Versions > 1 {
		files = makeDocuments(cfg.Files, cfg.Versions, cfg.MaxFileBytes, cfg.Seed, cfg.SlowShare, cfg.TrickleShare)
	}
	apis := make([]string, len(c.apiAddrs))
	for i, a := range c.apiAddrs {
		apis[i] = "http://" + a
	}
	up := newUploader(apis, c.apiKey, cfg.Seed)
	fs := newFaults(c)

	var nb *neighbour
	nbDone := make(chan struct{})
	if cfg.Neighbour {
		if nb, err = startNeighbour(ctx, c); err != nil {
			return nil, err
		}
		defer nb.close()
	}
	start := time.Now()
	log.Info("uploading", "files", len(files), "over", cfg.UploadFor, "setup", start.Sub(begin).Round(time.Millisecond))
	go func() {
		defer close(nbDone)
		if nb != nil {
			nb.upload(ctx, max(cfg.Files/4, 1), cfg.UploadFor)
		}
	}()
	chaosCtx, stopChaos := context.WithCancel(ctx)
	defer stopChaos()
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		if cfg.Script != nil {
			fs.script(chaosCtx, start, cfg.Script)
		} else {
			fs.random(chaosCtx, cfg.Seed, cfg.FaultEvery, cfg.FaultKinds)
		}
	}()
	if cfg.Versions > 1 {
		up.runDocuments(ctx, planDocuments(files, cfg.Versions, cfg.UploadFor, cfg.Seed), cfg.Uploaders)
	} else {
		up.run(ctx, files, cfg.Uploaders, cfg.UploadFor)
	}
	log.Info("uploads done", "accepted", len(up.results), "in", time.Since(start).Round(time.Millisecond))
	if cfg.Script != nil {
		<-faultsDone
	} else {
		sleepCtx(ctx, cfg.ChaosTail)
	}
	stopChaos()
	<-faultsDone
	fs.wait()
	for _, p := range c.processes() {
		if !p.running() && !c.retired(p) {
			if err := p.start(); err != nil {
				return nil, err
			}
		}
	}
	log.Info("faults over; waiting for every job to end", "faults", fs.counts, "within", cfg.Settle)
	settled := time.Now()
	_ = waitUntil(ctx, cfg.Settle, func() error {
		var open int
		if err := c.db.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE status NOT IN ('SUCCESS', 'FAILED', 'CANCELED', 'SUPERSEDED')`).Scan(&open); err != nil {
			return err
		}
		if open > 0 {
			return fmt.Errorf("%d jobs open", open)
		}
		return nil
	})
	log.Info("settled", "in", time.Since(settled).Round(time.Millisecond))
	rep, err = gather(ctx, c, fs, up, files)
	if err != nil {
		return nil, err
	}
	<-nbDone
	if nb != nil {
		var problems []string
		rep.Neighbour, problems = nb.check(ctx, cfg.Settle)
		rep.Problems = append(rep.Problems, problems...)
	}
	rep.Duration = time.Since(begin)
	return rep, nil
}
