package sweeper

import (
	"context"

	"github.com/ferry-relay/ferry/jobs"
)

// SessionExpirer closes upload sessions whose time ran out; *jobs.Store is
// one. The sweeper expires sessions when its job store is one.
type SessionExpirer interface {
	ExpiredSessions(ctx context.Context, limit int) ([]jobs.Session, error)
}

// MultipartAborter drops a multipart upload and its parts; *storage.Store
// is one.
type MultipartAborter interface {
	AbortMultipart(ctx context.Context, key, uploadID string) error
}

// expireSessions aborts the multipart uploads of expired upload sessions
// and removes their files (one assembled by a complete that never
// recorded its job). It costs what expired: the sessions come from an
// index of open sessions by expiry.
func (s *Sweeper) expireSessions(ctx context.Context) {
	store, ok := s.jobs.(SessionExpirer)
	mp, ok2 := s.objects.(MultipartAborter)
	if !ok || !ok2 {
		return
	}
	for range 10 {
		expired, err := store.ExpiredSessions(ctx, 100)
		if err != nil {
			s.log.Warn("expiring upload sessions", "err", err)
			return
		}
		for _, ss := range expired {
			if err := mp.AbortMultipart(ctx, ss.Job.ObjectKey, ss.UploadID); err != nil {
				s.log.Warn("aborting an expired upload session's upload", "session", ss.ID, "err", err)
			}
			if err := s.objects.Remove(ctx, ss.Job.ObjectKey); err != nil {
				s.log.Warn("removing an expired upload session's file", "session", ss.ID, "err", err)
			}
		}
		if len(expired) > 0 {
			s.log.Info("expired upload sessions", "count", len(expired))
		}
		if len(expired) < 100 {
			return
		}
	}
}
