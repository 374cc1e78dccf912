package queue

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/nats-io/nats.go/jetstream"
)

// installRE is the shape of an installation id (internal/installation);
// "jobs" would make its subjects those of the legacy stream.
var installRE = regexp.MustCompile(`^[a-z0-9]{1,32}$`)

// SetInstallation names the stream, subjects and consumers after the
// installation id; call it before any other use.
func (q *Queue) SetInstallation(id string) error {
	if !installRE.MatchString(id) || id == "jobs" {
		return fmt.Errorf("installation id %q: want 1 to 32 lowercase letters and digits", id)
	}
	q.names = namesOf(id)
	return nil
}

// Installation returns the installation id ("" if none is set).
func (q *Queue) Installation() string { return q.install }

// ForeignStreamError means the jobs stream belongs to another installation
// (its metadata says so): this one must not touch it.
type ForeignStreamError struct {
	Stream, Owner, Installation string
}

func (e *ForeignStreamError) Error() string {
	return fmt.Sprintf("stream %s belongs to ferry installation %s, not to this one (%s): two installations must not share a stream; check the database this process uses",
		e.Stream, e.Owner, e.Installation)
}

// checkOwner returns a *ForeignStreamError if the stream exists and its
// metadata names another installation.
func (q *Queue) checkOwner(ctx context.Context) error {
	st, err := q.js.Stream(ctx, q.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", q.stream, err)
	}
	return q.owned(st.CachedInfo())
}

// owned checks the owner that a stream's metadata names.
func (q *Queue) owned(info *jetstream.StreamInfo) error {
	owner := info.Config.Metadata[MetaInstallation]
	if owner != q.install && (owner != "" || q.install == "") {
		return &ForeignStreamError{Stream: q.stream, Owner: owner, Installation: q.install}
	}
	return nil
}

// LegacyStream reports whether the stream of ferry before installations
// exists beside this installation's own, and how many messages it holds.
func (q *Queue) LegacyStream(ctx context.Context) (msgs uint64, found bool, err error) {
	if q.install == "" {
		return 0, false, nil
	}
	st, err := q.js.Stream(ctx, LegacyStreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("stream %s: %w", LegacyStreamName, err)
	}
	return st.CachedInfo().State.Msgs, true, nil
}
