package jobs

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
)

// Unavailable reports whether err says the store could not be reached,
// rather than that it refused or lacked something: a caller may answer
// "retry later" to it. It is true for
//   - a connection that could not be made (*pgconn.ConnectError) or a
//     pool that is closed;
//   - a connection that broke or timed out in pgx's hands (pgx's own
//     transport errors, all of which say whether they are safe to retry);
//   - Postgres refusing because it is shutting down, starting, or out of
//     connections (SQLSTATE class 08, 57P01-57P03, 53300);
//   - a deadline that ran out (context.DeadlineExceeded);
//   - ErrOutcomeUnknown.
//
// A canceled context is not an outage: the caller gave up.
func Unavailable(err error) bool {
	var pe *pgconn.PgError
	var ce *pgconn.ConnectError
	var transport interface{ SafeToRetry() bool }
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return false
	case errors.As(err, &pe):
		return unavailableCode(pe.Code)
	case errors.As(err, &ce), errors.Is(err, puddle.ErrClosedPool),
		errors.As(err, &transport), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, ErrOutcomeUnknown):
		return true
	}
	return false
}

// unavailableCode says whether an SQLSTATE means Postgres cannot serve now.
func unavailableCode(code string) bool {
	switch code {
	case pgerrcode.AdminShutdown, pgerrcode.CrashShutdown, pgerrcode.CannotConnectNow, pgerrcode.TooManyConnections:
		return true
	}
	return strings.HasPrefix(code, "08") // connection exception
}

// notSent reports whether err happened before a statement reached
// Postgres: no connection could be had, or pgx says nothing was sent. Such
// a failure leaves nothing written, whatever the statement was.
func notSent(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || errors.Is(err, puddle.ErrClosedPool) || pgconn.SafeToRetry(err)
}
