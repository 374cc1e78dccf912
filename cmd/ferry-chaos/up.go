package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// serveCluster is make cluster: it starts the loopback cluster (no faults)
// with a reverse proxy in front of the API processes, writes the settings
// a client needs to <dir>/env, and keeps everything up until ctx ends. The
// run directory stays, with every process's log.
func serveCluster(ctx context.Context, cfg Config, proxyAddr string, log *slog.Logger) error {
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(".ferry", "cluster")
	}
	abs, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return err
	}
	// A fresh cluster each time: the previous run's state would hold
	// streams and buckets of servers that no longer exist.
	if err := os.RemoveAll(abs); err != nil {
		return err
	}
	cfg.Dir, cfg.KeepDir = abs, true
	ln, err := net.Listen("tcp", proxyAddr)
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	c, err := startCluster(ctx, cfg, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer c.close()
	go newProxy(c.apiAddrs).serve(ctx, ln)

	proxyURL := "http://" + ln.Addr().String()
	env := fmt.Sprintf("FERRY_SERVER=%s\nFERRY_API_KEY=%s\nFERRY_NATS_URL=%s\nFERRY_QUEUE_REPLICAS=%d\n"+
		"FERRY_DATABASE_URL=%s\nFERRY_S3_ENDPOINT=%s\nFERRY_S3_BUCKET=%s\nFERRY_TARGETS=%s\n",
		proxyURL, c.apiKey, c.natsURL(), cfg.QueueReplicas, c.dbURL, c.s3.Endpoint, c.s3.Bucket,
		filepath.Join(c.dir, "targets.yaml"))
	envPath := filepath.Join(c.dir, "env")
	if err := os.WriteFile(envPath, []byte(env), 0o600); err != nil {
		return err
	}
	var apis []string
	for _, a := range c.apiAddrs {
		apis = append(apis, "http://"+a)
	}
	fmt.Printf(`ferry cluster up (%s)
  API (reverse proxy)  %s  -> %s
  NATS                 %s
  MinIO                http://%s  drives %s
  Postgres             %s
  target               %s (fake sink: targets %s, %s, %s)
  logs and data        %s
  client settings      %s   (set -a; . %s; set +a; bin/ferry push ...)
Ctrl-C stops it.
`, c.topology(), proxyURL, strings.Join(apis, " "), c.natsURL(), c.s3.Endpoint, strings.Join(c.minioDrives, " "),
		c.dbURL, c.sinkAddr, targetOK, targetSlow, targetRefuse, c.dir, envPath, envPath)
	<-ctx.Done()
	log.Info("stopping the cluster")
	return nil
}
