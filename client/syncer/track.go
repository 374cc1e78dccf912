package syncer

import (
	"context"
	"sync"

	"github.com/ferry-relay/ferry/apitypes"
)

const (
	// trackMax is how many accepted jobs are followed to their end; past
	// it the oldest are no longer followed (memory stays flat).
	trackMax = 1024
	// trackPoll is how many jobs one poll asks for.
	trackPoll = 32
)

// tracker holds the ids of accepted jobs not known final, oldest first.
type tracker struct {
	mu  sync.Mutex
	ids []string
}

func (e *Engine) trackJob(id string) {
	if id == "" {
		return
	}
	e.track.mu.Lock()
	defer e.track.mu.Unlock()
	if len(e.track.ids) >= trackMax {
		e.track.ids = e.track.ids[1:]
	}
	e.track.ids = append(e.track.ids, id)
}

// pollDeliveries asks ferry for up to trackPoll followed jobs and counts
// those that reached their end: delivered, or failed at the target.
func (e *Engine) pollDeliveries(ctx context.Context) {
	e.track.mu.Lock()
	n := min(trackPoll, len(e.track.ids))
	batch := append([]string(nil), e.track.ids[:n]...)
	e.track.ids = e.track.ids[n:]
	e.track.mu.Unlock()
	var keep []string
	for i, id := range batch {
		j, err := e.d.Client.Job(ctx, id)
		if err != nil {
			keep = append(keep, batch[i:]...)
			break
		}
		switch j.Status {
		case apitypes.StatusSuccess, apitypes.StatusSuperseded:
			e.c.delivered.Add(1)
			if j.Status == apitypes.StatusSuccess {
				e.emit(Event{Kind: EventDelivered, Path: j.DocumentKey, Job: j.ID, Version: j.Version})
			}
		case apitypes.StatusFailed, apitypes.StatusCanceled:
			e.c.failed.Add(1)
			e.emit(Event{Kind: EventFailed, Path: j.DocumentKey, Job: j.ID, Version: j.Version, Message: j.LastError})
		default:
			keep = append(keep, id)
		}
	}
	e.track.mu.Lock()
	e.track.ids = append(keep, e.track.ids...)
	e.track.mu.Unlock()
}

func (t *tracker) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.ids)
}
