package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Scenarios, in the order they run.
var scenarioNames = []string{"ingest", "e2e-small", "e2e-large", "scale", "memory", "status", "latency", "dashboard", "backlog", "sessions", "documents"}

// Config is one benchmark run: where the services are, what to measure and
// how much.
type Config struct {
	// FerryBin is the ferry binary measured.
	FerryBin string
	// Out is the file the results table is written to ("" writes none).
	Out string
	// Reps is how many times each figure is measured.
	Reps int
	// Only lists the scenarios to run; empty runs them all.
	Only []string
	// ProfileDir, when set, runs a pprof-enabled build of ferry and writes
	// CPU profiles of ferry and of this process (the naive side) there.
	ProfileDir string
	// DatabaseURL points at the Postgres server; the benchmark creates and
	// drops its own database (DBName) on it.
	DatabaseURL string
	DBName      string
	// S3 is the MinIO the benchmark uses, with a bucket of its own.
	S3Endpoint, S3AccessKey, S3SecretKey, Bucket string
	// Sizes says how much each scenario moves.
	Sizes Sizes
	// Progress receives one line per step.
	Progress io.Writer
	// Command is how the run was started, for the record.
	Command string
	// Compare is a second ferry binary measured beside FerryBin in the
	// end-to-end scenarios (to weigh a change), with a database of its own.
	Compare string
	// Keep leaves the database of the last scenario in place, to look into.
	Keep bool
	// Traced runs ferry with tracing on as well in the end-to-end
	// scenarios ("ferry-traced", traced.go).
	Traced bool
}

// Sizes are the counts and sizes of every scenario. Every loop of the
// benchmark is bounded by these counts and by RunTimeout.
type Sizes struct {
	IngestFile       int64 // bytes of one ingest file
	IngestFiles      map[int]int
	SmallFile        int64
	SmallJobs        int
	LargeFile        int64
	LargeJobs        int
	E2EConcurrency   int // uploaders on both sides, and delivery slots
	BigFile          int64
	RefFile          int64
	StatusSmall      int // rows for the reference status figure
	StatusLarge      int // rows for the figure at scale
	StatusQueries    int // requests per query kind and repetition
	LatencySamples   int
	RunTimeout       time.Duration
	ScenarioDeadline time.Duration
	// LongScenarioDeadline bounds the scenarios that load a million jobs
	// first (dashboard).
	LongScenarioDeadline time.Duration
	// BacklogJobs are queued for the backlog scenario, whose background
	// cost is measured over BacklogWindow.
	BacklogJobs   int
	BacklogWindow time.Duration
	// SessionFile is the file of the sessions scenario (one of it, then 8
	// of a quarter of it at once).
	SessionFile int64
	// DocumentsSmall and DocumentsLarge are the documents loaded for the
	// reference and the at-scale listing figures of the documents scenario.
	DocumentsSmall int
	DocumentsLarge int
	// SyncFiles, SyncChanges, SyncChurn and SyncDeadline size the sync
	// scenario (sync.go).
	SyncFiles    int
	SyncChanges  int
	SyncChurn    time.Duration
	SyncDeadline time.Duration
}

// FullSizes are the sizes of `make bench`.
func FullSizes() Sizes {
	return Sizes{
		IngestFile:       64 << 20,
		IngestFiles:      map[int]int{1: 6, 8: 16},
		SmallFile:        4 << 10,
		SmallJobs:        2000,
		LargeFile:        1 << 20,
		LargeJobs:        300,
		E2EConcurrency:   16,
		BigFile:          2 << 30,
		RefFile:          1 << 20,
		StatusSmall:      10_000,
		StatusLarge:      1_000_000,
		StatusQueries:    400,
		LatencySamples:   100,
		RunTimeout:       3 * time.Minute,
		ScenarioDeadline: 8 * time.Minute,
		// 1M jobs take 2-5 minutes to load on two busy cores.
		LongScenarioDeadline: 15 * time.Minute,
		BacklogJobs:          1_000_000,
		BacklogWindow:        time.Minute,
		SessionFile:          1 << 30,
		DocumentsSmall:       10_000,
		DocumentsLarge:       1_000_000,
		SyncFiles:            100_000,
		SyncChanges:          20,
		SyncChurn:            2 * time.Minute,
		SyncDeadline:         40 * time.Minute,
	}
}

// SmokeSizes are tiny: they check that every measurement still works.
func SmokeSizes() Sizes {
	return Sizes{
		IngestFile:           1 << 20,
		IngestFiles:          map[int]int{1: 2, 8: 8},
		SmallFile:            4 << 10,
		SmallJobs:            24,
		LargeFile:            64 << 10,
		LargeJobs:            12,
		E2EConcurrency:       4,
		BigFile:              24 << 20,
		RefFile:              64 << 10,
		StatusSmall:          10_000,
		StatusLarge:          20_000,
		StatusQueries:        10,
		LatencySamples:       4,
		RunTimeout:           time.Minute,
		ScenarioDeadline:     2 * time.Minute,
		LongScenarioDeadline: 2 * time.Minute,
		BacklogJobs:          5_000,
		BacklogWindow:        5 * time.Second,
		SessionFile:          64 << 20,
		DocumentsSmall:       2_000,
		DocumentsLarge:       4_000,
		SyncFiles:            2_000,
		SyncChanges:          4,
		SyncChurn:            10 * time.Second,
		SyncDeadline:         4 * time.Minute,
	}
}

// concurrencies returns the ingest concurrencies in order.
func (s Sizes) concurrencies() []int {
	var cs []int
	for c := range s.IngestFiles {
		cs = append(cs, c)
	}
	slices.Sort(cs)
	return cs
}

func (c *Config) wants(scenario string) bool {
	return len(c.Only) == 0 || slices.Contains(c.Only, scenario)
}

func (c *Config) progress(format string, a ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, "bench: "+format+"\n", a...)
	}
}

// dbURL returns the URL of database name on the configured server.
func (c *Config) dbURL(name string) string {
	u, err := url.Parse(c.DatabaseURL)
	if err != nil {
		return c.DatabaseURL
	}
	u.Path = "/" + name
	return u.String()
}

func parseFlags(args []string) (Config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	cfg := Config{Sizes: FullSizes(), Progress: os.Stderr}
	var only string
	var smoke bool
	fs.StringVar(&cfg.FerryBin, "ferry", "bin/ferry", "ferry binary to measure")
	fs.StringVar(&cfg.Out, "out", "bench-results/latest.md", "file to write the results table to")
	fs.IntVar(&cfg.Reps, "reps", 3, "repetitions of each figure")
	fs.StringVar(&only, "only", "", "comma-separated scenarios to run: "+strings.Join(scenarioNames, ","))
	fs.StringVar(&cfg.ProfileDir, "profile", "", "write CPU profiles of ferry (a pprof-enabled build) and of the naive side here")
	fs.BoolVar(&smoke, "smoke", false, "tiny sizes: check that every measurement works")
	backlog := fs.Int("backlog-jobs", 0, "jobs queued in the backlog scenario (default 1,000,000; smoke 5,000)")
	syncFiles := fs.Int("sync-files", 0, "files in the sync scenario's tree (default 100,000; smoke 2,000)")
	fs.StringVar(&cfg.DBName, "db", "ferry_bench", "database to create (and drop) for the run")
	fs.StringVar(&cfg.Compare, "compare", "", "a second ferry binary to run beside -ferry in the end-to-end scenarios (\"ferry-b\")")
	fs.BoolVar(&cfg.Traced, "traced", false, "also run ferry with tracing on (OTLP to a receiver in the benchmark) in the end-to-end scenarios (\"ferry-traced\")")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the last scenario's database (to run EXPLAIN on it, say)")
	fs.StringVar(&cfg.Bucket, "bucket", "ferry-bench", "bucket to use (emptied between scenarios)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if smoke {
		cfg.Sizes = SmokeSizes()
	}
	if *syncFiles > 0 {
		cfg.Sizes.SyncFiles = *syncFiles
	}
	if *backlog > 0 {
		cfg.Sizes.BacklogJobs = *backlog
	}
	if only != "" {
		cfg.Only = strings.Split(only, ",")
		for _, s := range cfg.Only {
			if !slices.Contains(scenarioNames, s) {
				return cfg, fmt.Errorf("unknown scenario %q (have %s)", s, strings.Join(scenarioNames, ", "))
			}
		}
	}
	if cfg.Reps < 1 {
		return cfg, errors.New("-reps must be at least 1")
	}
	cfg.DatabaseURL = cmp.Or(os.Getenv("FERRY_DATABASE_URL"), "postgres://postgres:postgres@127.0.0.1:5432/ferry?sslmode=disable")
	cfg.S3Endpoint = cmp.Or(os.Getenv("FERRY_S3_ENDPOINT"), "127.0.0.1:9000")
	cfg.S3AccessKey = cmp.Or(os.Getenv("FERRY_S3_ACCESS_KEY"), "minioadmin")
	cfg.S3SecretKey = cmp.Or(os.Getenv("FERRY_S3_SECRET_KEY"), "minioadmin")
	cfg.Command = "bench " + strings.Join(args, " ")
	return cfg, nil
}
