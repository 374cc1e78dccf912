package storage

import (
	"container/list"
	"sync"
	"time"
)

// RecentFileMax is the largest file kept by the recent-files memory: the
// files read whole into a buffer before their PUT.
const RecentFileMax = smallObjectMax

// recentTTL is how long a recently stored file is kept in memory. A worker
// of the same process that keeps up with the uploads opens it within
// milliseconds; one that does not (a backlog) reads it from the bucket, as
// a worker of another process always does.
const recentTTL = time.Minute

// recent keeps the bytes of the small files this process stored last, so
// that a worker in the same process (ferry serve) delivers them without
// reading them back from the object storage. For a 4 KiB file that GET
// was about a third of what MinIO spent per job, and a quarter of the
// HTTP requests ferry made for it (BENCHMARKS.md).
//
// The object in the bucket stays the file of record: it is written and
// acknowledged before the file is kept here, a worker checks the bytes it
// reads against the recorded size and SHA-256 wherever they come from, and
// anything not found here (evicted, expired, another process's upload) is
// read from the bucket. Entries leave oldest first when the memory is
// full, when they expire, and when their object is removed through this
// store.
type recent struct {
	max int64
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	used  int64
	byKey map[string]*list.Element
	order *list.List // of *recentFile, oldest first
	// timer expires the oldest file when it is due, so that an idle
	// process does not hold its last files for ever; nil when nothing is
	// kept (or the store is closed).
	timer  *time.Timer
	closed bool
}

type recentFile struct {
	key  string
	data []byte
	at   time.Time
}

// newRecent keeps up to max bytes; nil (keep nothing) when max is not
// positive.
func newRecent(max int64) *recent {
	if max <= 0 {
		return nil
	}
	return &recent{max: max, ttl: recentTTL, now: time.Now, byKey: map[string]*list.Element{}, order: list.New()}
}

// add keeps a copy of data under key, replacing what key held.
func (r *recent) add(key string, data []byte) {
	if r == nil || int64(len(data)) > r.max || len(data) > RecentFileMax {
		return
	}
	f := &recentFile{key: key, data: append([]byte(nil), data...), at: r.now()}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropLocked(key)
	r.expireLocked(f.at)
	for r.used+int64(len(f.data)) > r.max {
		r.removeLocked(r.order.Front())
	}
	r.byKey[key] = r.order.PushBack(f)
	r.used += int64(len(f.data))
	recentBytes.Add(float64(len(f.data)))
	r.armLocked()
}

// armLocked sets the timer for the oldest file, if none is set.
func (r *recent) armLocked() {
	if r.timer != nil || r.closed || r.order.Len() == 0 {
		return
	}
	due := r.order.Front().Value.(*recentFile).at.Add(r.ttl)
	r.timer = time.AfterFunc(due.Sub(r.now()), func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.timer = nil
		r.expireLocked(r.now())
		r.armLocked()
	})
}

// close forgets every file and stops the timer.
func (r *recent) close() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	for r.order.Len() > 0 {
		r.removeLocked(r.order.Front())
	}
}

// get returns the bytes kept under key. The slice is shared: read it only.
func (r *recent) get(key string) ([]byte, bool) {
	if r == nil {
		return nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(r.now())
	e, ok := r.byKey[key]
	if !ok {
		return nil, false
	}
	return e.Value.(*recentFile).data, true
}

// drop forgets key.
func (r *recent) drop(key string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropLocked(key)
}

// bytes is the memory the kept files take.
func (r *recent) bytes() int64 {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.used
}

func (r *recent) dropLocked(key string) {
	if e, ok := r.byKey[key]; ok {
		r.removeLocked(e)
	}
}

// expireLocked removes the files kept since before now-ttl: the oldest
// are in front.
func (r *recent) expireLocked(now time.Time) {
	for e := r.order.Front(); e != nil && now.Sub(e.Value.(*recentFile).at) >= r.ttl; e = r.order.Front() {
		r.removeLocked(e)
	}
}

func (r *recent) removeLocked(e *list.Element) {
	f := r.order.Remove(e).(*recentFile)
	delete(r.byKey, f.key)
	r.used -= int64(len(f.data))
	recentBytes.Sub(float64(len(f.data)))
}
