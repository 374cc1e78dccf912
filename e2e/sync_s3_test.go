package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ferry-relay/ferry/client/syncer"
	"github.com/ferry-relay/ferry/client/syncer/s3source"
	"github.com/ferry-relay/ferry/internal/testenv"
)

// TestSyncS3Prefix: an S3 prefix on MinIO as the source: new, overwritten
// and deleted objects reach the target; objects outside the prefix and
// temporary names do not.
func TestSyncS3Prefix(t *testing.T) {
	e := newSyncEnv(t)
	st := testenv.Storage(t)
	bucket, mc := st.Bucket(), st.Client()
	put := func(key, content string) {
		t.Helper()
		if _, err := mc.PutObject(context.Background(), bucket, key, bytes.NewReader([]byte(content)), int64(len(content)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c := testenv.S3Config()
	src, err := s3source.New(context.Background(), s3source.Config{Endpoint: c.Endpoint, Bucket: bucket, Prefix: "in",
		AccessKey: c.AccessKey, SecretKey: c.SecretKey, Skip: func(rel string, isDir bool) bool { return rel == "x.tmp" }})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	once := func(o syncer.Options) syncer.Summary {
		t.Helper()
		eng, closeIt := e.engineOf(src, o)
		defer closeIt()
		s, err := eng.Once(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	put("in/a.txt", "a1")
	put("in/sub/b.txt", "b1")
	put("in/x.tmp", "temporary")
	put("out/c.txt", "not under the prefix")
	if s := once(syncer.Options{}); s.Accepted != 2 || !s.Complete() {
		t.Fatalf("first: %+v", s)
	}
	e.waitTarget(map[string][]string{"a.txt": {"a1"}, "sub/b.txt": {"b1"}}, 30*time.Second)
	if s := once(syncer.Options{}); s.Hashed != 0 || s.Accepted+s.Unchanged != 0 {
		t.Fatalf("unchanged: %+v", s)
	}
	put("in/a.txt", "a2") // overwritten
	if err := mc.RemoveObject(context.Background(), bucket, "in/sub/b.txt", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if s := once(syncer.Options{Delete: true, MaxDelete: syncer.DeleteLimit{Percent: 100}}); s.Accepted != 1 || s.Deleted != 1 {
		t.Fatalf("overwritten and deleted: %+v", s)
	}
	e.waitTarget(map[string][]string{"a.txt": {"a1", "a2"}}, 30*time.Second)
	if testing.Short() {
		return
	}

	// The same through the binary: credentials from the AWS variables, a
	// new state seeded from ferry's documents, so only c.txt is sent.
	put("in/c.txt", "c1")
	cli := syncCLI{e: e, bin: ferryBinary(t)}
	run := func(src string) (string, string, int) {
		cmd := cli.command("sync", src, "--target", "docs", "--state", t.TempDir(), "--s3-endpoint", "http://"+c.Endpoint, "--min-age", "100ms")
		cmd.Env = append(cmd.Env, "AWS_ACCESS_KEY_ID="+c.AccessKey, "AWS_SECRET_ACCESS_KEY="+c.SecretKey)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if err != nil {
			code = cmd.ProcessState.ExitCode()
		}
		return stdout.String(), stderr.String(), code
	}
	if stdout, stderr, code := run("s3://" + bucket + "/in"); code != 0 || !strings.Contains(stdout, "1 accepted, 0 unchanged") {
		t.Fatalf("ferry sync s3://: exit %d\n%s\n%s", code, stdout, stderr)
	}
	e.waitTarget(map[string][]string{"a.txt": {"a1", "a2"}, "c.txt": {"c1"}}, 30*time.Second)
	// ferry's own bucket is refused (it holds ferry's stored uploads).
	if _, stderr, code := run("s3://" + e.p.objects.Bucket()); code != 2 {
		t.Fatalf("ferry's own bucket: exit %d, want 2\n%s", code, stderr)
	}
	// A bucket that does not exist: the source is gone.
	if _, stderr, code := run("s3://no-such-bucket-for-ferry/x"); code != 3 {
		t.Fatalf("missing bucket: exit %d, want 3\n%s", code, stderr)
	}
}
