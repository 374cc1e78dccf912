// Command bench measures ferry against the components it stands on
// (MinIO, Postgres, NATS JetStream), side by side in one run on one machine,
// and prints one table of ratios. `make bench` runs it; BENCHMARKS.md says
// how to read it.
//
// ferry runs as a separate process (bin/ferry serve, or bin/ferry api for
// the ingest figure) with its own database, bucket, loopback port and
// embedded NATS store, so that its memory can be read from /proc. The raw
// limits (minio-go PutObject, a naive put/insert/publish/fetch/get/PUT/update
// pipeline) run in this process against the same services, and the loopback
// HTTP target both sides deliver to runs here too.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parseFlags(os.Args[1:])
	if err == nil {
		err = run(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stop()
		os.Exit(1)
	}
}
