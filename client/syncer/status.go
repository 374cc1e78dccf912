package syncer

import (
	"sync"
	"sync/atomic"
	"time"
)

// Event kinds.
const (
	EventAccepted  = "accepted"  // ferry accepted a new version
	EventUnchanged = "unchanged" // ferry holds this content already
	EventDeleted   = "deleted"   // ferry accepted a delete
	EventRefused   = "refused"   // ferry refused a change for good
	EventChanged   = "changed"   // the file changed while it was sent: taken again later
	EventUnsettled = "unsettled" // the file kept changing: not taken yet
	EventRetrying  = "retrying"  // ferry unreachable or busy: changes kept pending
	EventResumed   = "resumed"   // ferry answers again
	EventGuard     = "guard"     // deletes held back by --max-delete
	EventNoDelete  = "no-delete" // the target's kind has no delete
	EventRescan    = "rescan"    // a full pass began
	EventGone      = "gone"      // the source is gone
	EventWarning   = "warning"
	EventDelivered = "delivered" // a version reached the target
	EventFailed    = "failed"    // a version failed at the target
)

// Event is something a person watching sync may want to see.
type Event struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"event"`
	Path    string    `json:"path,omitempty"`
	Job     string    `json:"job,omitempty"`
	Version int       `json:"version,omitempty"`
	Count   int       `json:"count,omitempty"`
	Message string    `json:"message,omitempty"`
}

// Status is a snapshot of the engine's counters.
type Status struct {
	Tracked   int `json:"tracked"`
	Pending   int `json:"pending"`
	Sending   int `json:"sending"`
	Accepted  int `json:"accepted"`
	Unchanged int `json:"unchanged"`
	Deleted   int `json:"deleted"`
	Refused   int `json:"refused"`
	Delivered int `json:"delivered"`
	Failed    int `json:"failed"`
	// Hashed and HashedBytes count what passes read to hash.
	Hashed      int   `json:"hashed"`
	HashedBytes int64 `json:"hashed_bytes"`
	// Retrying is set while ferry is unreachable or busy.
	Retrying   bool      `json:"retrying"`
	LastChange time.Time `json:"last_change,omitzero"`
	NextRescan time.Time `json:"next_rescan,omitzero"`
}

// counters are the engine's live counts.
type counters struct {
	tracked, pending, sending              atomic.Int64
	accepted, unchanged, deleted, refused  atomic.Int64
	delivered, failed, hashed, hashedBytes atomic.Int64
	retrying                               atomic.Bool
	mu                                     sync.Mutex
	lastChange, nextRescan                 time.Time
}

func (c *counters) snapshot() Status {
	c.mu.Lock()
	last, next := c.lastChange, c.nextRescan
	c.mu.Unlock()
	return Status{
		Tracked: int(c.tracked.Load()), Pending: int(c.pending.Load()), Sending: int(c.sending.Load()),
		Accepted: int(c.accepted.Load()), Unchanged: int(c.unchanged.Load()), Deleted: int(c.deleted.Load()),
		Refused: int(c.refused.Load()), Delivered: int(c.delivered.Load()), Failed: int(c.failed.Load()),
		Hashed: int(c.hashed.Load()), HashedBytes: c.hashedBytes.Load(), Retrying: c.retrying.Load(),
		LastChange: last, NextRescan: next,
	}
}

func (c *counters) changed(t time.Time) {
	c.mu.Lock()
	c.lastChange = t
	c.mu.Unlock()
}

func (c *counters) setNextRescan(t time.Time) {
	c.mu.Lock()
	c.nextRescan = t
	c.mu.Unlock()
}

// Summary is what Once did.
type Summary struct {
	Status
	// Unsettled counts files still changing when Once gave up waiting;
	// HeldDeletes the deletes the --max-delete guard held back.
	Unsettled   int `json:"unsettled"`
	HeldDeletes int `json:"held_deletes"`
}

// Complete reports whether every change found was accepted by ferry.
func (s Summary) Complete() bool {
	return s.Pending == 0 && s.Refused == 0 && s.Unsettled == 0 && s.HeldDeletes == 0
}
