// Command chaos proves that ferry loses nothing when its parts crash: it
// pushes a few thousand files through a real ferry (an API process and
// worker processes, a NATS server, a private PostgreSQL cluster, MinIO and
// a fake target) while it kills and restarts them at random, then checks
// that every accepted file reached the target or failed where the target
// refused it, that no job is stuck, that no upload cut short left a job,
// and that the target received at most one extra copy per delivery a kill
// or a shutdown cut short.
//
// Everything listens on loopback; the run is bounded in files and time.
//
//	go run ./cmd/ferry-chaos -ferry bin/ferry            # make chaos
//	go run ./cmd/ferry-chaos -files 300 -seed 7          # a smaller run
//	go run ./cmd/ferry-chaos -files 300 -versions 3      # documents, each in 3 versions
//
// With -versions n every file is a document (issue 21) sent in n versions
// of distinct contents over the run, to http targets with versions: put;
// the report then also checks, per document, that the target holds
// exactly the versions accepted and not superseded, each once, in order,
// the last one current.
//
// It exits 1 when a promise is broken, and keeps the run directory (process
// logs) for a look.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	if natsdRole() {
		return
	}
	cfg := defaultConfig()
	var timeout time.Duration
	var privateMinIO bool
	var only string
	var clusterProof, up bool
	var proxyAddr string
	flag.BoolVar(&clusterProof, "cluster", false, "the cluster proof (make cluster-test): 3 NATS servers (R3), a 4-drive MinIO erasure set, 2 API and 3 worker processes; kills the stream leader, a drive, a worker and an API for good")
	flag.BoolVar(&up, "up", false, "start the loopback cluster of make cluster under -dir and keep it up until Ctrl-C (no faults)")
	flag.StringVar(&cfg.Dir, "dir", "", "run directory (default: a temporary one; make cluster: .ferry/cluster)")
	flag.StringVar(&proxyAddr, "proxy", "127.0.0.1:8480", "with -up: address of the reverse proxy in front of the API processes")
	flag.StringVar(&cfg.FerryBin, "ferry", "", "ferry binary (default: build ./cmd/ferry)")
	flag.IntVar(&cfg.Files, "files", cfg.Files, "files to upload")
	flag.IntVar(&cfg.Versions, "versions", 0, "send every file as a document in this many versions (2 or more; issue 21)")
	flag.IntVar(&cfg.MaxFileBytes, "max-bytes", cfg.MaxFileBytes, "largest file")
	flag.DurationVar(&cfg.UploadFor, "upload-for", cfg.UploadFor, "spread the uploads over this long")
	flag.IntVar(&cfg.Workers, "workers", cfg.Workers, "worker processes")
	flag.BoolVar(&cfg.Serve, "serve", false, "run the API processes as ferry serve (API, workers and sweeper in one, with its recent-files memory)")
	flag.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the files and the faults")
	flag.DurationVar(&cfg.FaultEvery[0], "fault-min", cfg.FaultEvery[0], "shortest time between faults")
	flag.DurationVar(&cfg.FaultEvery[1], "fault-max", cfg.FaultEvery[1], "longest time between faults")
	flag.StringVar(&only, "faults", "", "inject only these faults, comma-separated: worker-kill, worker-term, api-kill, nats-kill, postgres-crash, minio-kill, target-outage, stream-purge (the last only when named)")
	flag.BoolVar(&cfg.Neighbour, "neighbour", false, "run a second ferry installation (own database, bucket and target; same target names) on the same NATS server, uploading files/4 small files; its jobs must all be delivered too")
	flag.Float64Var(&cfg.TrickleShare, "trickle", cfg.TrickleShare, "share of uploads sent slowly")
	flag.Float64Var(&cfg.FailRate, "fail-rate", cfg.FailRate, "share of the target's answers that are a 503")
	flag.BoolVar(&privateMinIO, "private-minio", true, "run a private MinIO (killed too) when the minio binary is found")
	flag.DurationVar(&cfg.Settle, "settle", cfg.Settle, "how long jobs may take to end after the faults stop")
	flag.BoolVar(&cfg.KeepDir, "keep", false, "keep the run directory (process logs)")
	flag.DurationVar(&timeout, "timeout", 15*time.Minute, "give up after this long")
	flag.Parse()
	if clusterProof || up {
		// The cluster's shape, and the proof's script unless -faults
		// asks for random faults; the flags given still apply.
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		cc := clusterConfig()
		cc.FerryBin, cc.Dir, cc.Seed, cc.KeepDir = cfg.FerryBin, cfg.Dir, cfg.Seed, cfg.KeepDir
		if set["files"] {
			cc.Files = cfg.Files
		}
		if set["upload-for"] {
			cc.UploadFor, cc.Script = cfg.UploadFor, clusterScript(cfg.UploadFor)
		}
		if set["faults"] {
			cc.Script = nil
		}
		if up {
			cc.FailRate = 0 // a target that answers: make cluster is for trying ferry
			if !set["timeout"] {
				timeout = 24 * time.Hour
			}
		}
		cfg = cc
	}

	for name := range strings.SplitSeq(only, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		k, ok := faultNames[name]
		if !ok {
			fatal(fmt.Errorf("unknown fault %q", name))
		}
		cfg.FaultKinds = append(cfg.FaultKinds, k)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if cfg.FerryBin == "" {
		dir, err := os.MkdirTemp("", "ferry-chaos-bin-")
		if err != nil {
			fatal(err)
		}
		defer os.RemoveAll(dir)
		cfg.FerryBin = filepath.Join(dir, "ferry")
		if err := buildFerry(ctx, cfg.FerryBin); err != nil {
			fatal(err)
		}
	}
	if (clusterProof || up) && cfg.MinIODrives > 1 && findMinIO() == "" {
		fatal(fmt.Errorf("the cluster needs the minio binary for its erasure set: run scripts/stack.sh up"))
	}
	if privateMinIO {
		cfg.MinIOBin = findMinIO()
		if cfg.MinIOBin == "" {
			log.Warn("no minio binary: using the shared MinIO, which is not restarted", "endpoint", cfg.S3Endpoint)
		}
	}
	if up {
		if err := serveCluster(ctx, cfg, proxyAddr, log); err != nil {
			fatal(err)
		}
		return
	}
	rep, err := run(ctx, cfg, log)
	if err != nil {
		fatal(err)
	}
	rep.Print(os.Stdout)
	if len(rep.Problems) > 0 {
		os.Exit(1)
	}
}

// faultNames are the names of the faults on the command line.
var faultNames = map[string]faultKind{
	"worker-kill": faultWorkerKill, "worker-term": faultWorkerTerm, "api-kill": faultAPIKill,
	"nats-kill": faultNATSKill, "postgres-crash": faultPostgresCrash, "minio-kill": faultMinIOKill,
	"target-outage": faultTargetOutage, "stream-purge": faultStreamPurge,
}

// defaultConfig is the run of make chaos.
func defaultConfig() Config {
	return Config{
		Files:        3000,
		MaxFileBytes: 256 << 10,
		Uploaders:    8,
		UploadFor:    2 * time.Minute,
		Workers:      2,
		Seed:         1,
		FaultEvery:   [2]time.Duration{2 * time.Second, 6 * time.Second},
		ChaosTail:    15 * time.Second,
		Settle:       3 * time.Minute,
		FailRate:     0.2,
		SlowDelay:    2 * time.Second,
		RefuseShare:  0.03,
		SlowShare:    0.04,
		TrickleShare: 0.2,
		MaxAttempts:  25,
		Lease:        5 * time.Second,
		AckWait:      5 * time.Second,
		// Shorter than the slow target's delay: a SIGTERM interrupts some
		// deliveries, which must be handed back.
		ShutdownGrace: time.Second,
		S3Endpoint:    cmp.Or(os.Getenv("FERRY_TEST_S3_ENDPOINT"), "127.0.0.1:9000"),
		S3AccessKey:   cmp.Or(os.Getenv("FERRY_TEST_S3_ACCESS_KEY"), "minioadmin"),
		S3SecretKey:   cmp.Or(os.Getenv("FERRY_TEST_S3_SECRET_KEY"), "minioadmin"),
	}
}

// clusterConfig is the run of make cluster-test: 1,000 files through 2 API
// and 3 worker processes on a 3-node NATS cluster (R3) and a 4-drive MinIO
// erasure set, with a cap on the deliveries in flight to the targets that
// every worker process shares.
func clusterConfig() Config {
	cfg := defaultConfig()
	cfg.Files = 1000
	cfg.UploadFor = time.Minute
	cfg.Workers, cfg.APIs = 3, 2
	cfg.NATSNodes, cfg.QueueReplicas = 3, 3
	cfg.MinIODrives = 4
	cfg.MaxInFlight = map[string]int{targetOK: 6, targetSlow: 3}
	cfg.FailRate = 0.1
	cfg.TrickleShare = 0.1
	cfg.SlowShare = 0.08
	cfg.Settle = 3 * time.Minute
	cfg.Script = clusterScript(cfg.UploadFor)
	return cfg
}

// clusterScript is the proof's faults over an upload span: the NATS server
// leading the stream killed -9, then one MinIO drive taken away, then one
// worker and one API process killed -9, each for good.
func clusterScript(span time.Duration) []fault {
	return []fault{
		{At: span * 15 / 100, Kind: faultNATSLeaderLoss, Permanent: true},
		{At: span * 35 / 100, Kind: faultDriveLoss, Permanent: true},
		{At: span * 55 / 100, Kind: faultWorkerKill, Worker: 0, Permanent: true},
		{At: span * 75 / 100, Kind: faultAPIKill, API: 0, Permanent: true},
	}
}

// buildFerry builds ./cmd/ferry of this module into path.
func buildFerry(ctx context.Context, path string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", path, "github.com/ferry-relay/ferry/cmd/ferry")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ferry: %w\n%s", err, out)
	}
	return nil
}

// findMinIO returns the minio binary on the PATH or in Go's bin directory.
func findMinIO() string {
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return ""
	}
	for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
		p := filepath.Join(dir, "bin", "minio")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "chaos:", err)
	os.Exit(2)
}
