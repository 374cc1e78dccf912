package e2e

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ferry-relay/ferry/internal/natsserver"
	"github.com/ferry-relay/ferry/internal/testenv"
)

// TestSyncS3EventsCLI: ferry sync --watch --s3-events, the binary, with a
// real MinIO publishing its notifications to NATS: new, overwritten and
// deleted objects reach the target within seconds though the prefix is
// listed every 10 minutes. NATS is away when sync starts and comes back
// after its first pass, later it restarts: each time sync listens again,
// and lists the prefix at once for what no notification told (an object
// put while MinIO published none). The NATS token is never printed.
func TestSyncS3EventsCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the ferry binary and starts a MinIO of its own")
	}
	const bucket = "sync-cli"
	m, ns := minioWithNATS(t, bucket)
	natsURL := ns.URL()
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	token, port := u.User.Username(), u.Port()
	put := func(key, content string) time.Time {
		t.Helper()
		at := time.Now()
		if _, err := m.Client.PutObject(context.Background(), bucket, key, strings.NewReader(content), int64(len(content)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		return at
	}
	put("in/a.txt", "a1")

	e := newSyncEnv(t)
	c := syncCLI{e: e, bin: ferryBinary(t)}
	cmd := c.command("sync", "s3://"+bucket+"/in", "--target", "docs", "--state", t.TempDir(),
		"--s3-endpoint", "http://"+m.Endpoint, "--watch", "--json", "--poll", "10m", "--min-age", "100ms",
		"--delete", "--max-delete", "100%", "--s3-events", natsURL+"/"+eventsSubject)
	cmd.Env = append(cmd.Env, "AWS_ACCESS_KEY_ID="+privateMinIOUser, "AWS_SECRET_ACCESS_KEY="+privateMinIOPassword)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	ns.Shutdown() // away when sync starts
	_, lines := c.startCmd(cmd)
	var out syncBuffer
	go func() {
		for l := range lines {
			_, _ = out.Write([]byte(l + "\n"))
		}
	}()
	defer func() {
		if t.Failed() {
			t.Logf("ferry sync's output:\n%s\n%s", out.String(), stderr.String())
		}
	}()
	want := map[string][]string{"a.txt": {"a1"}}
	e.waitTarget(want, 60*time.Second) // the first full pass
	if !waitCond(10*time.Second, func() bool { return strings.Contains(stderr.String(), "not listening yet") }) {
		t.Errorf("sync did not say NATS was away:\n%s", stderr.String())
	}
	ctx := context.Background()
	unnotified := func(key, content string) {
		t.Helper()
		if err := m.Client.RemoveAllBucketNotification(ctx, bucket); err != nil {
			t.Fatal(err)
		}
		put(key, content)
		notifyBucket(t, m, bucket)
	}
	// NATS back on its address with its token: MinIO and sync reconnect.
	p, _ := strconv.Atoi(port)
	restartNATS := func() *natsserver.Server {
		t.Helper()
		s, err := natsserver.StartWithToken(t.TempDir(), "127.0.0.1", p, token)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Shutdown)
		return s
	}
	unnotified("in/early.txt", "early")
	at := time.Now()
	ns2 := restartNATS()
	want["early.txt"] = []string{"early"}
	e.waitTarget(want, 45*time.Second)
	t.Logf("NATS back after it was away at the start: a change no notification told at the target %s after", time.Since(at).Round(time.Millisecond))

	// The subscription is in place once a put is taken at once.
	testenv.WaitFor(t, 45*time.Second, "a first object taken through its notification", func() bool {
		put("in/ready.txt", "ready")
		return waitCond(3*time.Second, func() bool { _, ok := e.versions()["ready.txt"]; return ok })
	})
	want["ready.txt"] = []string{"ready"}
	step := func(what string, at time.Time) {
		t.Helper()
		e.waitTarget(want, eventsWithin)
		t.Logf("%s: at the target %s after the change", what, time.Since(at).Round(time.Millisecond))
	}
	at = put("in/b.txt", "b1")
	want["b.txt"] = []string{"b1"}
	step("a new object", at)
	at = put("in/b.txt", "b2")
	want["b.txt"] = []string{"b1", "b2"}
	step("an overwrite", at)
	at = time.Now()
	if err := m.Client.RemoveObject(context.Background(), bucket, "in/a.txt", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	delete(want, "a.txt")
	step("a delete", at)

	ns2.Shutdown()
	unnotified("in/gap.txt", "gap")
	at = time.Now()
	restartNATS()
	want["gap.txt"] = []string{"gap"}
	e.waitTarget(want, 30*time.Second)
	t.Logf("NATS restarted: a change no notification told at the target %s after", time.Since(at).Round(time.Millisecond))

	if strings.Contains(out.String()+stderr.String(), token) {
		t.Errorf("ferry sync printed the NATS token")
	}
}
