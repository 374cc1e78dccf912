package sweeper

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-relay/ferry/queue"
)

// ConsumerCheckEvery is how often the sweeper checks the workers'
// consumers.
const ConsumerCheckEvery = 10 * time.Second

// repair is a pass over the jobs published before a time: those whose
// messages a lost stream, or a purge, may have taken.
type repair struct {
	reason    string
	before    time.Time
	cursor    string
	published int
	started   time.Time
}

// repairStatus is what Describe tells of the repairs.
type repairStatus struct {
	// current is the repair under way (its reason, start, progress);
	// last the one that ended last.
	current, last string
}

// checkStream rebuilds a lost stream, marks a purged one again, and
// republishes the jobs whose messages went.
func (s *Sweeper) checkStream(ctx context.Context) int {
	if s.stream == nil {
		return 0
	}
	st, err := s.stream.Heal(ctx)
	if err != nil {
		if !s.streamDown {
			s.log.Warn("jobs stream unavailable", "err", err)
		}
		s.streamDown = true
		return 0
	}
	s.streamDown = false
	first := s.streamCreated.IsZero()
	switch {
	case st.Mark == 0:
		s.markAgain(ctx, first)
	case !st.Created.Equal(s.streamCreated) || (s.markKnown && st.Mark != s.markSeq):
		// Also at the first check: jobs published before this stream
		// existed, or before its last mark (a purge repaired by a process
		// that may have died before it finished), may have no message.
		// Normally there are none but the few due jobs not yet marked
		// published (jobs.PublishedBefore), published again harmlessly.
		before := st.Created
		if st.MarkedAt.After(before) {
			before = st.MarkedAt
		}
		reason := ""
		switch {
		case !st.Created.Equal(s.streamCreated) && (st.Recreated || !first):
			reason = "the jobs stream was lost and is rebuilt"
			s.log.Warn(reason+": publishing the waiting jobs again from Postgres", "stream_created", st.Created)
		case !first:
			reason = "another process found the jobs stream purged"
			s.log.Info(reason+": publishing the waiting jobs again from Postgres", "marked_at", st.MarkedAt)
		}
		if first && s.cfg.RepublishAtStart {
			before = time.Now()
			reason = "the stream of a ferry before installations exists (upgrade)"
		}
		s.markSeq, s.markKnown = st.Mark, true
		s.startRepair(reason, before)
	case !s.markKnown:
		s.markSeq, s.markKnown = st.Mark, true
	}
	s.streamCreated = st.Created
	if s.repair == nil {
		return 0
	}
	return s.republish(ctx)
}

// markAgain handles a stream without its mark: it was purged in place (or
// a limit dropped its oldest messages), so every job published before now
// may have lost its message. The mark goes back first, so that a purge
// during the repair is seen too.
func (s *Sweeper) markAgain(ctx context.Context, first bool) {
	reason := "the jobs stream lost its messages (purged in place, or dropped by a limit)"
	if first {
		reason = "the jobs stream has no mark (purged, or made by an older ferry)"
	}
	s.log.Warn(reason + ": publishing the waiting jobs again from Postgres")
	seq, err := s.stream.Mark(ctx)
	if err != nil {
		s.log.Warn("marking the jobs stream", "err", err)
	}
	s.markSeq, s.markKnown = seq, seq != 0
	s.startRepair(reason, time.Now())
}

// startRepair starts (again) the pass over the jobs published before
// before; reason, if not empty, is logged when it ends and shown by
// Describe meanwhile.
func (s *Sweeper) startRepair(reason string, before time.Time) {
	s.repair = &repair{reason: reason, before: before.Add(clockMargin), started: time.Now()}
	if reason != "" {
		s.setStatus(func(st *repairStatus) {
			st.current = fmt.Sprintf("%s at %s: publishing the waiting jobs again", reason, time.Now().UTC().Format(time.RFC3339))
		})
	}
}

// republish carries on the repair pass, in batches of published messages,
// for at most repairBudget.
func (s *Sweeper) republish(ctx context.Context) int {
	r := s.repair
	published := 0
	deadline := time.Now().Add(repairBudget)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		refs, err := s.jobs.PublishedBefore(ctx, r.before, r.cursor, 1000)
		if err != nil {
			s.log.Warn("finding jobs to publish again", "err", err)
			return published
		}
		n := s.publish(ctx, "republish_lost", refs)
		published += n
		r.published += n
		if n < len(refs) {
			return published // the queue failed: the next tick retries
		}
		if len(refs) < 1000 {
			s.endRepair(r)
			return published
		}
		r.cursor = refs[len(refs)-1].ID
		if r.reason != "" {
			s.setStatus(func(st *repairStatus) {
				st.current = fmt.Sprintf("%s at %s: %d waiting jobs published again so far",
					r.reason, r.started.UTC().Format(time.RFC3339), r.published)
			})
		}
	}
	return published
}

func (s *Sweeper) endRepair(r *repair) {
	s.repair = nil
	took := time.Since(r.started).Round(time.Millisecond)
	if r.reason == "" {
		if r.published > 0 {
			s.log.Info("published the waiting jobs again at start", "count", r.published, "took", took)
		}
		return
	}
	s.log.Info("published the waiting jobs again: "+r.reason, "count", r.published, "took", took)
	s.setStatus(func(st *repairStatus) {
		st.current = ""
		st.last = fmt.Sprintf("%s at %s: %d waiting jobs published again in %s",
			r.reason, r.started.UTC().Format(time.RFC3339), r.published, took)
	})
}

func (s *Sweeper) setStatus(f func(*repairStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.status)
}

// Ping is always nil: a repair under way does not make ferry unready (it
// accepts uploads and delivers meanwhile). It makes the sweeper a /readyz
// component, whose Describe an admin sees.
func (s *Sweeper) Ping(context.Context) error { return nil }

// Describe tells the repair of the queue under way, if any, and the last
// one: for /readyz's details.
func (s *Sweeper) Describe(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.status.current != "":
		return "repairing: " + s.status.current, nil
	case s.status.last != "":
		return "ok (last repair: " + s.status.last + ")", nil
	}
	return "ok", nil
}

// checkConsumers runs the consumer check every ConsumerCheckEvery.
func (s *Sweeper) checkConsumers(ctx context.Context) {
	if s.consumers == nil || time.Since(s.lastConsumers) < ConsumerCheckEvery {
		return
	}
	s.lastConsumers = time.Now()
	deleted, err := s.consumers.Run(ctx)
	for name, why := range deleted {
		s.log.Warn("deleted a consumer that would skip waiting jobs; the workers create it again", "consumer", name, "why", why)
		s.setStatus(func(st *repairStatus) {
			st.last = fmt.Sprintf("consumer %s deleted at %s (%s), created again by the workers",
				name, time.Now().UTC().Format(time.RFC3339), why)
		})
	}
	if err != nil && ctx.Err() == nil {
		s.log.Warn("checking the consumers", "err", err)
	}
}

var _ Stream = (*queue.Queue)(nil)
var _ ConsumerChecker = (*queue.ConsumerCheck)(nil)
