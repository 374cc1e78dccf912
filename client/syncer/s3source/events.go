package s3source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"

	"github.com/nats-io/nats.go"
)

// Events subscribes (core NATS) to the bucket notifications MinIO
// publishes to subject on the NATS server at natsURL, and calls onKeys
// with the paths, relative to the prefix, of the objects a notification
// names: created, overwritten or removed alike (a hint to look again,
// typically the sync engine's Touch). Keys of other buckets, outside the
// prefix, skipped, or directory markers are left out; onKeys is not
// called for a notification that names none. Calls come one at a time.
//
// Notifications are hints and nothing more: NATS core delivers at most
// once, so those published while the subscriber is away, disconnected or
// too slow are lost, and MinIO may send one twice (or for an object since
// removed again). The listing stays the authority; keep listing every
// --poll. OnGap hears when notifications may have been lost (NATS
// reconnected, messages dropped): a full listing then finds their
// changes without waiting for the next --poll.
//
// Events blocks until ctx ends (then nil), reconnecting as long as it
// takes; it returns an error if it cannot connect or subscribe at first.
// natsURL may carry credentials; they are never in an error or a log.
func (s *Source) Events(ctx context.Context, natsURL, subject string, onKeys func(paths []string), opts ...EventsOption) error {
	var o eventsOptions
	for _, opt := range opts {
		opt(&o)
	}
	where := redactURL(natsURL)
	nc, err := nats.Connect(natsURL,
		nats.Name("ferry sync "+s.String()),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			s.log.Warn("s3 events: disconnected from NATS; listings go on", "server", where, "err", err)
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			s.log.Info("s3 events: reconnected to NATS (notifications sent meanwhile are lost; a listing finds their changes)", "server", where)
			o.gap("s3 events: reconnected to NATS")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			s.log.Warn("s3 events: notifications dropped (a listing finds their changes)", "server", where, "err", err)
			o.gap("s3 events: notifications dropped")
		}),
	)
	if err != nil {
		return fmt.Errorf("s3 events: connect to %s: %w", where, err)
	}
	defer nc.Close()
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		if paths := s.notifiedPaths(m.Data); len(paths) > 0 {
			onKeys(paths)
		}
	})
	if err != nil {
		return fmt.Errorf("s3 events: subscribe to %s on %s: %w", subject, where, err)
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("s3 events: subscribe to %s on %s: %w", subject, where, err)
	}
	s.log.Info("s3 events: listening for bucket notifications", "server", where, "subject", subject)
	if o.onListening != nil {
		o.onListening()
	}
	<-ctx.Done()
	if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		s.log.Debug("s3 events: unsubscribe", "err", err)
	}
	return nil
}

// EventsOption adjusts Events.
type EventsOption func(*eventsOptions)

type eventsOptions struct {
	onGap       func(reason string)
	onListening func()
}

func (o *eventsOptions) gap(reason string) {
	if o.onGap != nil {
		o.onGap(reason)
	}
}

// OnGap has Events call f when notifications may have been lost: after
// NATS reconnected (the subscription is back in place when f is called)
// or dropped messages of a slow subscriber. Typically the sync engine's
// Rescan.
func OnGap(f func(reason string)) EventsOption {
	return func(o *eventsOptions) { o.onGap = f }
}

// OnListening has Events call f once its subscription is in place, before
// the first notification: a caller that missed notifications before
// (Events failed to connect earlier) can list again from then on.
func OnListening(f func()) EventsOption {
	return func(o *eventsOptions) { o.onListening = f }
}

// notification is the part of MinIO's event JSON (the S3 event format,
// one record per object) that names the objects.
type notification struct {
	Records []struct {
		S3 struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				// Key is URL-encoded (query escaping: a space is "+").
				Key string `json:"key"`
			} `json:"object"`
		} `json:"s3"`
	} `json:"Records"`
}

// notifiedPaths returns the paths of the source's files that a
// notification names, each once.
func (s *Source) notifiedPaths(data []byte) []string {
	var n notification
	if err := json.Unmarshal(data, &n); err != nil {
		s.log.Warn("s3 events: a message that is not an S3 notification was ignored", "err", err)
		return nil
	}
	skip := s.newSkipper()
	var paths []string
	for _, r := range n.Records {
		if b := r.S3.Bucket.Name; b != "" && b != s.cfg.Bucket {
			continue
		}
		key, err := url.QueryUnescape(r.S3.Object.Key)
		if err != nil {
			s.log.Warn("s3 events: an object key that is not URL-encoded was ignored", "err", err)
			continue
		}
		rel, ok := s.rel(key)
		if !ok || isFerryKey(key) || skip.skip(rel) || slices.Contains(paths, rel) {
			continue
		}
		paths = append(paths, rel)
	}
	return paths
}

// redactURL hides the password (or token) of a URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a NATS URL that does not parse)"
	}
	if u.User != nil {
		if _, hasPass := u.User.Password(); !hasPass {
			u.User = url.User("xxxxx") // a token alone
		}
	}
	return u.Redacted()
}
