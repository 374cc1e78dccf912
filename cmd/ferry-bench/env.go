package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ferry-relay/ferry/migrations"
)

// env is what every scenario shares: the bucket, the loopback target, a
// scratch directory, and the database the run creates and drops.
type env struct {
	cfg  *Config
	s3   *minio.Client
	s3tr *http.Transport
	sink *sink
	tmp  string
	prof *profiler

	starts atomic.Int64 // ferry processes started, for unique key names
}

func newEnv(ctx context.Context, cfg *Config) (*env, error) {
	e := &env{cfg: cfg}
	var err error
	if e.s3, e.s3tr, err = newS3(cfg); err != nil {
		return nil, err
	}
	ok, err := e.s3.BucketExists(ctx, cfg.Bucket)
	if err == nil && !ok {
		err = e.s3.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{})
	}
	if err != nil {
		e.s3tr.CloseIdleConnections()
		return nil, fmt.Errorf("bucket %s at %s (run scripts/stack.sh up): %w", cfg.Bucket, cfg.S3Endpoint, err)
	}
	if e.tmp, err = os.MkdirTemp("", "ferry-bench-"); err != nil {
		e.s3tr.CloseIdleConnections()
		return nil, err
	}
	if e.sink, err = startSink(); err != nil {
		e.close(ctx)
		return nil, err
	}
	if cfg.ProfileDir != "" {
		if e.prof, err = newProfiler(ctx, cfg, e.tmp); err != nil {
			e.close(ctx)
			return nil, err
		}
	}
	return e, nil
}

// close removes what the run left: objects, bucket contents, database and
// scratch directory.
func (e *env) close(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if e.sink != nil {
		e.sink.close()
	}
	_ = e.emptyBucket(ctx)
	if !e.cfg.Keep {
		_ = e.dropDB(ctx)
	}
	e.s3tr.CloseIdleConnections()
	os.RemoveAll(e.tmp)
}

// newS3 returns a MinIO client with a transport of its own, whose idle
// connections the caller closes when done.
func newS3(cfg *Config) (*minio.Client, *http.Transport, error) {
	tr, err := minio.DefaultTransport(false)
	if err != nil {
		return nil, nil, fmt.Errorf("minio transport: %w", err)
	}
	c, err := minio.New(cfg.S3Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.S3AccessKey, cfg.S3SecretKey, ""),
		Transport: tr,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("minio client: %w", err)
	}
	return c, tr, nil
}

func (e *env) admin(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, e.cfg.dbURL("postgres"))
	if err != nil {
		return nil, fmt.Errorf("postgres at %s (run scripts/stack.sh up): %w", e.cfg.dbURL("postgres"), err)
	}
	return conn, nil
}

// dropDB drops the benchmark's databases.
func (e *env) dropDB(ctx context.Context) error {
	conn, err := e.admin(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, name := range []string{e.cfg.DBName, e.cfg.DBName + compareSuffix, e.cfg.DBName + tracedSuffix} {
		_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		if err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
	}
	return nil
}

// compareSuffix names the database of the ferry given with -compare.
const compareSuffix = "_b"

// freshDB drops and recreates the benchmark's database (with the suffix
// appended to its name), applies ferry's migrations, and returns a pool on
// it and its URL.
func (e *env) freshDB(ctx context.Context, suffix string) (*pgxpool.Pool, string, error) {
	return e.freshDBFor(ctx, suffix, "")
}

// freshDBFor is freshDB with the migrations of the ferry binary bin
// ("ferry migrate") when bin is set: a -compare build from before a
// migration would refuse a database migrated past what it knows.
func (e *env) freshDBFor(ctx context.Context, suffix, bin string) (*pgxpool.Pool, string, error) {
	name := e.cfg.DBName + suffix
	conn, err := e.admin(ctx)
	if err != nil {
		return nil, "", err
	}
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	if err == nil {
		_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	}
	conn.Close(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("recreate database %s: %w", name, err)
	}
	url := e.cfg.dbURL(name)
	if bin != "" {
		cmd := exec.Command(bin, "migrate")
		cmd.Env = childEnv(map[string]string{"FERRY_DATABASE_URL": url})
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, "", fmt.Errorf("%s migrate %s: %w\n%s", bin, name, err, out)
		}
	} else if err := migrations.Up(url); err != nil {
		return nil, "", fmt.Errorf("migrate %s: %w", name, err)
	}
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, "", err
	}
	pcfg.MaxConns = 40
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: %w", err)
	}
	return pool, url, nil
}

// emptyBucket removes every object and unfinished upload in the bucket.
func (e *env) emptyBucket(ctx context.Context) error {
	objs := make(chan minio.ObjectInfo)
	go func() {
		defer close(objs)
		for o := range e.s3.ListObjects(ctx, e.cfg.Bucket, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err != nil {
				return
			}
			objs <- o
		}
	}()
	var errs []error
	for r := range e.s3.RemoveObjects(ctx, e.cfg.Bucket, objs, minio.RemoveObjectsOptions{}) {
		errs = append(errs, r.Err)
	}
	for up := range e.s3.ListIncompleteUploads(ctx, e.cfg.Bucket, "", true) {
		if up.Err == nil {
			_ = e.s3.RemoveIncompleteUpload(ctx, e.cfg.Bucket, up.Key)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("empty bucket %s: %w", e.cfg.Bucket, err)
	}
	return nil
}
