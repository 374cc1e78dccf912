package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestSyncSmoke runs the sync scenario with tiny sizes (2,000 files, 4
// changes at idle, 10 s of churn) against a real ferry, Postgres, MinIO
// and NATS: every figure is measured and every assertion of the scenario
// (0 hashed and 0 uploads on the second sync) holds.
func TestSyncSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ferry and ferry sync processes")
	}
	cfg := smokeConfig(t, "sync", "go test -run TestSyncSmoke ./cmd/ferry-bench", []string{"sync"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := measure(ctx, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"sync: first sync of", "sync: the same (vs sha256sum", "sync: second sync of the unchanged",
		"sync --watch: a change at idle until accepted", "sync --watch: a change at idle until delivered",
		"sync --watch: peak RSS", "sync --watch: RSS after the last", "sync --watch --min-age 1ms (for comparison): a change at idle until accepted"}
	for _, w := range want {
		found := false
		for _, r := range rep.rows {
			if strings.HasPrefix(r.Figure, w) {
				found = true
				if r.Ferry.N != 1 || r.Ferry.Med <= 0 {
					t.Errorf("%s: ferry %+v: want one positive value", r.Figure, r.Ferry)
				}
			}
		}
		if !found {
			t.Errorf("no figure %q in the report", w)
		}
	}
}
