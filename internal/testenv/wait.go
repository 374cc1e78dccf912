package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// pollEvery is how often WaitFor looks at its condition.
const pollEvery = 10 * time.Millisecond

// WaitFor polls cond until it holds and fails the test if it does not
// within the given time; what names the condition in the failure. Tests
// wait on conditions, never on a fixed sleep.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		<-tick.C
	}
}

// WaitForDBTime waits until the database's clock, the one its leases,
// expiries and due times are compared against, is past ts.
func WaitForDBTime(t testing.TB, db *pgxpool.Pool, ts time.Time) {
	t.Helper()
	WaitFor(t, 10*time.Second, "the database's clock passes "+ts.Format(time.RFC3339Nano), func() bool {
		var past bool
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := db.QueryRow(ctx, `SELECT now() > $1`, ts).Scan(&past); err != nil {
			t.Fatalf("read the database's clock: %v", err)
		}
		return past
	})
}
