package main

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-relay/ferry/internal/installation"
	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/queue"
	"github.com/ferry-relay/ferry/storage"
)

// A process refuses to start on a stream whose metadata names another
// installation, and starts on its own.
func TestStartRefusesAnotherInstallationsStream(t *testing.T) {
	t.Parallel()
	ctx := testenv.Context(t)
	pool, dbURL := testenv.Postgres(t)
	s3 := testenv.S3Config()
	testenv.Storage(t, func(c *storage.Config) { c.Bucket = s3.Bucket })
	srv := testenv.NATS(t)
	dir := t.TempDir()
	targetsFile := filepath.Join(dir, "targets.yaml")
	if err := os.WriteFile(targetsFile, []byte("targets:\n  - {name: archive, kind: http, url: \"http://127.0.0.1:1/\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config{DatabaseURL: dbURL, NATSURL: srv.URL(), S3Endpoint: s3.Endpoint, S3AccessKey: s3.AccessKey,
		S3SecretKey: s3.SecretKey, S3Bucket: s3.Bucket, TargetsFile: targetsFile, DataDir: dir, QueueReplicas: 1,
		AckWait: queue.AckWaitDefault}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	id, err := installation.ID(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	name := queue.LegacyStreamName + "_" + id
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"ferry." + id + ".>"},
		Metadata: map[string]string{queue.MetaInstallation: "someoneelse"}}); err != nil {
		t.Fatal(err)
	}
	var foreign *queue.ForeignStreamError
	if s, err := openStack(ctx, cfg, log, false); !errors.As(err, &foreign) {
		if s != nil {
			s.close()
		}
		t.Fatalf("start on another installation's stream: %v", err)
	}

	if err := js.DeleteStream(ctx, name); err != nil {
		t.Fatal(err)
	}
	s, err := openStack(ctx, cfg, log, false)
	if err != nil {
		t.Fatalf("start on its own stream: %v", err)
	}
	defer s.close()
	st, err := js.Stream(ctx, name)
	if err != nil || st.CachedInfo().Config.Metadata[queue.MetaInstallation] != id {
		t.Fatalf("stream %s after start: %v", name, err)
	}
}
