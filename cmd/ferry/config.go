package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ferry-relay/ferry/api"
	"github.com/ferry-relay/ferry/queue"
	"github.com/ferry-relay/ferry/worker"
)

// config is ferry's process configuration: environment variables, which
// flags override. Every default points at loopback.
type config struct {
	Listen         string
	DatabaseURL    string
	NATSURL        string
	QueueReplicas  int
	S3Endpoint     string
	S3AccessKey    string
	S3SecretKey    string
	S3Bucket       string
	TargetsFile    string
	MaxUploadBytes int64
	// RecentFilesBytes is the memory ferry serve keeps for the small files
	// it just stored, which its workers then deliver without a GET.
	RecentFilesBytes int64
	// BodyIdleTimeout cuts an upload whose body sends nothing for that
	// long (FERRY_BODY_IDLE_TIMEOUT).
	BodyIdleTimeout time.Duration
	// SessionTTL is how long an upload session lives without activity
	// (FERRY_UPLOAD_SESSION_TTL).
	SessionTTL    time.Duration
	DataDir       string
	NoMigrate     bool
	ShutdownGrace time.Duration
	Retention     time.Duration
	Lease         time.Duration
	AckWait       time.Duration
	LogFormat     string
	// RateLimit is requests per second per API key; 0 is no limit.
	RateLimit            float64
	MaxConcurrentUploads int
	// MaxUploadsPerKey caps one key's uploads in flight; 0: its fair
	// share of the slots only.
	MaxUploadsPerKey int
	// MinUploadRate (bytes per second, 0: none) and MinUploadRateWindow:
	// an upload body that falls a window behind that rate is cut.
	MinUploadRate       int64
	MinUploadRateWindow time.Duration
	// BodyReadTimeout bounds the body of every request but an upload.
	BodyReadTimeout time.Duration
	// AuthFailureLimit is the invalid keys per second one client address
	// may send; 0 is no limit.
	AuthFailureLimit   float64
	ReportWriteTimeout time.Duration
	MetricsListen      string
	MetricsKey         string
	TLSCert            string
	TLSKey             string

	// env holds what was wrong with the environment's settings.
	env envSettings
}

// Defaults.
const (
	listenDefault      = "127.0.0.1:8080"
	databaseURLDefault = "postgres://postgres:postgres@127.0.0.1:5432/ferry?sslmode=disable"
	natsURLDefault     = "nats://127.0.0.1:4222"
	s3EndpointDefault  = "127.0.0.1:9000"
	s3BucketDefault    = "ferry"
	targetsDefault     = "targets.yaml"
	dataDirDefault     = "ferry-data"
	recentFilesDefault = 64 << 20
)

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// bind registers the flags, with the environment as their defaults. Every
// setting is parsed strictly: a malformed one is kept in c.envErrs, and
// validate (or checkEnv) stops the process with it.
func (c *config) bind(fs *pflag.FlagSet) {
	e := &c.env
	maxUpload := e.bytes("FERRY_MAX_UPLOAD_BYTES", api.MaxUploadBytesDefault)
	grace := e.duration("FERRY_SHUTDOWN_GRACE", 30*time.Second, 0)
	retention := e.duration("FERRY_RETENTION", 7*24*time.Hour, 0)
	fs.StringVar(&c.Listen, "listen", env("FERRY_LISTEN", listenDefault), "address of the HTTP API [FERRY_LISTEN]")
	fs.StringVar(&c.DatabaseURL, "database-url", env("FERRY_DATABASE_URL", databaseURLDefault), "Postgres URL [FERRY_DATABASE_URL]")
	fs.StringVar(&c.NATSURL, "nats-url", os.Getenv("FERRY_NATS_URL"), "NATS URL, or the comma-separated URLs of a cluster's servers; serve embeds a NATS server when empty [FERRY_NATS_URL]")
	fs.IntVar(&c.QueueReplicas, "queue-replicas", e.integer("FERRY_QUEUE_REPLICAS", 1, 1, 5), "replicas of the jobs stream (3 on a three-node NATS cluster); applied to an existing stream when changed [FERRY_QUEUE_REPLICAS]")
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", env("FERRY_S3_ENDPOINT", s3EndpointDefault), "S3/MinIO endpoint, host:port or URL [FERRY_S3_ENDPOINT]")
	fs.StringVar(&c.S3AccessKey, "s3-access-key", env("FERRY_S3_ACCESS_KEY", "minioadmin"), "S3 access key [FERRY_S3_ACCESS_KEY]")
	fs.StringVar(&c.S3SecretKey, "s3-secret-key", env("FERRY_S3_SECRET_KEY", "minioadmin"), "S3 secret key [FERRY_S3_SECRET_KEY]")
	fs.StringVar(&c.S3Bucket, "s3-bucket", env("FERRY_S3_BUCKET", s3BucketDefault), "bucket, created if missing [FERRY_S3_BUCKET]")
	fs.StringVar(&c.TargetsFile, "targets", env("FERRY_TARGETS", targetsDefault), "targets file (YAML) [FERRY_TARGETS]")
	fs.Int64Var(&c.MaxUploadBytes, "max-upload-bytes", maxUpload, "largest accepted file [FERRY_MAX_UPLOAD_BYTES]")
	fs.Int64Var(&c.RecentFilesBytes, "recent-files-bytes", int64(e.integer("FERRY_RECENT_FILES_BYTES", recentFilesDefault, 0, 1<<40)), "serve only: memory for the small files (up to 1 MiB) just stored, which its workers deliver without reading them back from S3; 0 turns it off [FERRY_RECENT_FILES_BYTES]")
	fs.DurationVar(&c.BodyIdleTimeout, "body-idle-timeout", e.duration("FERRY_BODY_IDLE_TIMEOUT", api.BodyIdleTimeoutDefault, time.Second), "an upload whose body sends nothing for this long is cut and its partial file removed [FERRY_BODY_IDLE_TIMEOUT]")
	fs.DurationVar(&c.SessionTTL, "upload-session-ttl", e.duration("FERRY_UPLOAD_SESSION_TTL", api.SessionTTLDefault, time.Minute), "an upload session expires after this long without activity, and its parts are removed [FERRY_UPLOAD_SESSION_TTL]")
	fs.StringVar(&c.DataDir, "data-dir", env("FERRY_DATA_DIR", dataDirDefault), "where the embedded NATS server stores its data [FERRY_DATA_DIR]")
	fs.BoolVar(&c.NoMigrate, "no-migrate", e.boolean("FERRY_NO_MIGRATE"), "do not apply database migrations at start [FERRY_NO_MIGRATE]")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", grace, "how long in-flight deliveries may finish after SIGTERM [FERRY_SHUTDOWN_GRACE]")
	fs.DurationVar(&c.Retention, "retention", retention, "how long a delivered file stays in storage; 0 keeps it forever [FERRY_RETENTION]")
	fs.DurationVar(&c.Lease, "lease", e.duration("FERRY_LEASE", worker.LeaseDefault, time.Second), "how long a worker's claim on a job lasts without a heartbeat; a dead worker's jobs run again after it [FERRY_LEASE]")
	fs.DurationVar(&c.AckWait, "ack-wait", e.duration("FERRY_ACK_WAIT", queue.AckWaitDefault, time.Second), "JetStream ack wait of the delivery consumers [FERRY_ACK_WAIT]")
	fs.StringVar(&c.LogFormat, "log-format", e.oneOf("FERRY_LOG_FORMAT", "text", "text", "json"), "log format: text or json [FERRY_LOG_FORMAT]")
	fs.Float64Var(&c.RateLimit, "rate-limit", e.rate("FERRY_RATE_LIMIT"), "requests per second each API key may make to one API process (token bucket; e.g. 20, or 600/m); 0 is no limit [FERRY_RATE_LIMIT]")
	fs.IntVar(&c.MaxConcurrentUploads, "max-concurrent-uploads", e.integer("FERRY_MAX_CONCURRENT_UPLOADS", api.MaxConcurrentUploadsDefault, 1, 1<<20), "uploads one API process receives at once; more get 503 with Retry-After [FERRY_MAX_CONCURRENT_UPLOADS]")
	fs.IntVar(&c.MaxUploadsPerKey, "max-uploads-per-key", e.integer("FERRY_MAX_UPLOADS_PER_KEY", 0, 0, 1<<20), "uploads one API key may have in flight in one API process; 0: no fixed cap, only a fair share of the slots while other keys upload too [FERRY_MAX_UPLOADS_PER_KEY]")
	fs.Int64Var(&c.MinUploadRate, "min-upload-rate", int64(e.integer("FERRY_MIN_UPLOAD_RATE", api.MinUploadRateDefault, 0, 1<<30)), "bytes per second an upload body must keep up on average (over --min-upload-rate-window); a slower one is cut; 0 turns it off [FERRY_MIN_UPLOAD_RATE]")
	fs.DurationVar(&c.MinUploadRateWindow, "min-upload-rate-window", e.duration("FERRY_MIN_UPLOAD_RATE_WINDOW", api.MinUploadRateWindowDefault, time.Second), "how long an upload body may fall behind the minimum rate before it is cut [FERRY_MIN_UPLOAD_RATE_WINDOW]")
	fs.DurationVar(&c.BodyReadTimeout, "body-read-timeout", e.duration("FERRY_BODY_READ_TIMEOUT", api.BodyReadTimeoutDefault, time.Second), "the body of any request but an upload must arrive whole within this long, or the connection is closed [FERRY_BODY_READ_TIMEOUT]")
	fs.Float64Var(&c.AuthFailureLimit, "auth-failure-limit", e.rateOr("FERRY_AUTH_FAILURE_LIMIT", api.AuthFailureLimitDefault), "unknown, revoked or expired API keys one client address may send per second (token bucket of 20); over it: 429 without a key lookup; 0 is no limit [FERRY_AUTH_FAILURE_LIMIT]")
	fs.DurationVar(&c.ReportWriteTimeout, "report-write-timeout", e.duration("FERRY_REPORT_WRITE_TIMEOUT", api.ReportWriteTimeoutDefault, time.Second), "a report reader that takes nothing for this long is cut off [FERRY_REPORT_WRITE_TIMEOUT]")
	fs.StringVar(&c.MetricsListen, "metrics-listen", os.Getenv("FERRY_METRICS_LISTEN"), "serve /metrics on this address instead of the API's; ferry worker, which has no API, serves its /healthz and /readyz there too [FERRY_METRICS_LISTEN]")
	fs.StringVar(&c.MetricsKey, "metrics-key", os.Getenv("FERRY_METRICS_KEY"), "bearer token /metrics requires; empty: none [FERRY_METRICS_KEY]")
	fs.StringVar(&c.TLSCert, "tls-cert", os.Getenv("FERRY_TLS_CERT"), "PEM certificate (chain) to serve the API over HTTPS, with --tls-key [FERRY_TLS_CERT]")
	fs.StringVar(&c.TLSKey, "tls-key", os.Getenv("FERRY_TLS_KEY"), "PEM private key of --tls-cert [FERRY_TLS_KEY]")
	redactDefaults(fs)
}

// secretFlags hold secrets: --help shows where their value comes from,
// never the value.
var secretFlags = map[string]string{
	"s3-secret-key": "FERRY_S3_SECRET_KEY",
	"metrics-key":   "FERRY_METRICS_KEY",
}

// redactDefaults keeps secrets out of --help: pflag prints each flag's
// default, which here is the environment's value. DefValue is only ever
// shown, never used.
func redactDefaults(fs *pflag.FlagSet) {
	for name, envName := range secretFlags {
		if f := fs.Lookup(name); f != nil && f.DefValue != "" {
			f.DefValue = "from " + envName + ", hidden"
		}
	}
	if f := fs.Lookup("database-url"); f != nil {
		f.DefValue = redactURL(f.DefValue)
	}
	if f := fs.Lookup("nats-url"); f != nil {
		f.DefValue = redactURL(f.DefValue)
	}
}

// redactURL hides the password (and any token user) of a URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if s == "" {
			return ""
		}
		return "(unparsable URL, hidden)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else {
			u.User = url.User("xxxxx")
		}
	}
	q := u.Query()
	for _, k := range []string{"password", "token", "sslpassword"} {
		if q.Has(k) {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func parseRate(s string) (float64, error) {
	if s == "" || s == "0" || s == "off" {
		return 0, nil
	}
	num, per, _ := strings.Cut(s, "/")
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("rate %q: want a number of requests, optionally /s, /m or /h", s)
	}
	switch strings.TrimSpace(per) {
	case "", "s":
		return n, nil
	case "m":
		return n / 60, nil
	case "h":
		return n / 3600, nil
	}
	return 0, fmt.Errorf("rate %q: want /s, /m or /h", s)
}

// checkEnv reports the malformed environment settings, as a
// *settingsError (exit status 2).
func (c *config) checkEnv() error {
	if len(c.env.errs) == 0 {
		return nil
	}
	return &settingsError{errors.Join(c.env.errs...)}
}

// validate checks the whole configuration; what is wrong is a
// *settingsError (exit status 2).
func (c *config) validate() error {
	if err := c.checkEnv(); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return &settingsError{err}
	}
	return nil
}

func (c *config) check() error {
	if c.Lease < time.Second || c.AckWait < time.Second {
		return fmt.Errorf("lease and ack-wait must be at least 1s")
	}
	if c.QueueReplicas < 1 || c.QueueReplicas > 5 {
		return fmt.Errorf("queue-replicas must be 1 to 5")
	}
	if c.MaxUploadBytes <= 0 {
		return fmt.Errorf("max-upload-bytes must be positive")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("log-format must be text or json")
	}
	if c.MaxConcurrentUploads < 1 {
		return fmt.Errorf("max-concurrent-uploads must be at least 1")
	}
	if c.RateLimit < 0 || c.AuthFailureLimit < 0 {
		return fmt.Errorf("rate-limit and auth-failure-limit must not be negative")
	}
	if c.MaxUploadsPerKey < 0 || c.MinUploadRate < 0 {
		return fmt.Errorf("max-uploads-per-key and min-upload-rate must not be negative")
	}
	if c.MinUploadRateWindow < time.Second || c.BodyReadTimeout < time.Second {
		return fmt.Errorf("min-upload-rate-window and body-read-timeout must be at least 1s")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("tls-cert and tls-key go together")
	}
	return nil
}
