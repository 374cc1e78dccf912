package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-relay/ferry/client/push"
	"github.com/ferry-relay/ferry/client/syncer/s3source"
	"github.com/ferry-relay/ferry/client/syncer/source"
)

// s3PollDefault is how often an S3 prefix is listed with --watch when
// --poll is not given.
const s3PollDefault = 30 * time.Second

// openSyncSource returns SOURCE as a source.Source, the state folder, and
// what closes the source.
func openSyncSource(ctx context.Context, arg string, f *syncFlags, filter push.Filter, log *slog.Logger) (source.Source, string, func(), error) {
	rules := source.Rules{Filter: filter}
	if s3source.IsURL(arg) {
		return openS3Source(ctx, arg, f, rules, log)
	}
	root, err := filepath.Abs(arg)
	if err != nil {
		return nil, "", nil, exitWith(exitSyncUsage, err)
	}
	root = filepath.Clean(root)
	state, err := f.stateDir(root)
	if err != nil {
		return nil, "", nil, exitWith(exitSyncUsage, err)
	}
	if rel, ok := insideRel(root, state); ok {
		rules.Skipped = append(rules.Skipped, rel)
	}
	d, err := source.NewDir(root, rules.Skip)
	if err != nil {
		return nil, "", nil, exitWith(exitSyncUsage, err)
	}
	f.skip = rules.Skip
	return d, state, func() {}, nil
}

// openS3Source connects to an s3:// SOURCE: credentials from the AWS
// environment variables (or the flags), endpoint from --s3-endpoint.
func openS3Source(ctx context.Context, arg string, f *syncFlags, rules source.Rules, log *slog.Logger) (source.Source, string, func(), error) {
	cfg, err := s3source.ParseURL(arg, os.Getenv)
	if err != nil {
		return nil, "", nil, exitWith(exitSyncUsage, err)
	}
	if f.s3Endpoint != "" {
		cfg.Endpoint = f.s3Endpoint
	}
	if f.s3Insecure {
		cfg.Secure = false
	}
	cfg.Skip, cfg.Log = rules.Skip, log
	src, err := s3source.New(ctx, cfg)
	switch {
	case errors.Is(err, source.ErrGone):
		return nil, "", nil, exitWith(exitSyncGone, err)
	case err != nil:
		return nil, "", nil, exitWith(exitSyncUsage, err)
	}
	state, err := f.stateDir(src.String())
	if err != nil {
		src.Close()
		return nil, "", nil, exitWith(exitSyncUsage, err)
	}
	if f.poll == 0 {
		f.poll = s3PollDefault
	}
	return src, state, src.Close, nil
}
