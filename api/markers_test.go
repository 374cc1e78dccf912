package api_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// A raw upload of declared size over 1 MiB is marked in progress before its
// bytes are in (the orphan sweep must leave its object alone however long
// it takes); one of at most 1 MiB, stored from memory in one PUT and
// recorded at once, is never marked. Both end recorded, with no marker
// left.
func TestUploadMarkers(t *testing.T) {
	t.Parallel()
	us := newUploadServer(t, 8<<20)
	pool, key := us.pool, us.key

	for _, tc := range []struct {
		name   string
		size   int64
		marked bool
	}{
		{"1 MiB", 1 << 20, false},
		{"2 MiB", 2 << 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			req, _ := http.NewRequest(http.MethodPost, us.url+"/v1/uploads?target=t&filename=f.bin", pr)
			req.ContentLength = tc.size
			req.Header.Set("Content-Type", "application/octet-stream")
			req.Header.Set("Authorization", "Bearer "+key)
			answer := make(chan int, 1)
			go func() {
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					answer <- 0
					return
				}
				resp.Body.Close()
				answer <- resp.StatusCode
			}()
			chunk := make([]byte, 64<<10)
			sent := int64(0)
			write := func(n int64) {
				for ; n > 0; n -= int64(len(chunk)) {
					w := min(n, int64(len(chunk)))
					if _, err := pw.Write(chunk[:w]); err != nil {
						t.Fatal(err)
					}
					sent += w
				}
			}
			write(tc.size / 2)
			// Half the bytes are on their way: the handler is receiving
			// (a marker is written before its first byte is read).
			time.Sleep(200 * time.Millisecond)
			deadline := time.Now().Add(2 * time.Second)
			n := markers(t, pool)
			for tc.marked && n == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				n = markers(t, pool)
			}
			if got := n > 0; got != tc.marked {
				t.Errorf("marker while receiving: %v, want %v", got, tc.marked)
			}
			write(tc.size - sent)
			_ = pw.Close()
			if code := <-answer; code != http.StatusAccepted {
				t.Fatalf("upload: %d", code)
			}
			if n := markers(t, pool); n != 0 {
				t.Errorf("%d markers left after the record", n)
			}
			var recorded int
			if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM jobs WHERE size = $1`, tc.size).Scan(&recorded); err != nil || recorded != 1 {
				t.Errorf("jobs of %d bytes: %d (%v)", tc.size, recorded, err)
			}
		})
	}
}

func markers(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM uploads_in_progress`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
