package watch

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMemory10kDirs measures what watching 10,000 folders costs this
// process (the kernel's own memory for the watches is not in it). Run it
// with FERRY_WATCH_MEM=1, without -race: go test -run Memory -v.
func TestMemory10kDirs(t *testing.T) {
	if os.Getenv("FERRY_WATCH_MEM") == "" {
		t.Skip("a measurement: set FERRY_WATCH_MEM=1")
	}
	root := t.TempDir()
	for i := range 100 {
		for j := range 100 {
			dir := fmt.Sprintf("d%03d", i)
			if j > 0 {
				dir = fmt.Sprintf("d%03d/s%03d", i, j)
			}
			mkdirs(t, root, dir)
		}
	}
	heap0, rss0 := memNow()
	start := time.Now()
	rec, w, stop := run(t, root, Options{})
	took := time.Since(start)
	heap1, rss1 := memNow()
	write(t, root, "d050/s050/f.txt", "1")
	eventually(t, "deep change seen", func() bool { return rec.saw("d050/s050/f.txt") })
	stop()
	t.Logf("%d folders watched in %v: Go heap +%.1f MiB (%.0f B a folder), RSS +%.1f MiB",
		w.dirs.len(), took.Round(time.Millisecond), mib(heap1-heap0),
		float64(heap1-heap0)/float64(w.dirs.len()), mib(rss1-rss0))
}

func memNow() (heap, rss uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			_, _ = fmt.Sscan(v, &rss)
			rss *= 1024
		}
	}
	return m.HeapAlloc, rss
}

func mib(b uint64) float64 { return float64(int64(b)) / (1 << 20) }
