package jobs

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferry-relay/ferry/internal/testenv"
)

// A store that cannot be reached is Unavailable, whatever it was asked;
// a store that answered (a refusal, nothing found) is not; and a malformed
// cursor is ErrInvalidCursor before the store is asked anything.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dead, err := pgxpool.New(ctx, "postgres://postgres:postgres@127.0.0.1:1/ferry?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	live, _ := testenv.Postgres(t)
	closedPool, err := pgxpool.New(ctx, testenv.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	closedPool.Close()
	cursor := "01890a5d-ac96-774b-bcce-b302099a8057"

	_, _, deadErr := NewStore(dead).List(ctx, AllTenants(), Filter{Cursor: cursor})
	_, _, closedErr := NewStore(closedPool).List(ctx, AllTenants(), Filter{Cursor: cursor})
	_, _, badCursor := NewStore(dead).List(ctx, AllTenants(), Filter{Cursor: "x'; --"})
	_, getErr := NewStore(live).Get(ctx, AllTenants(), cursor)
	_, refused := live.Exec(ctx, `SELECT 1/0`)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, _, canceledErr := NewStore(live).List(canceled, AllTenants(), Filter{})

	for _, tc := range []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"connection refused", deadErr, true},
		{"closed pool", closedErr, true},
		{"admin shutdown", fmt.Errorf("x: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"deadline", context.DeadlineExceeded, true},
		{"outcome unknown", fmt.Errorf("record: %w", ErrOutcomeUnknown), true},
		{"invalid cursor", badCursor, false},
		{"not found", getErr, false},
		{"refused statement", refused, false},
		{"canceled", canceledErr, false},
		{"nil", nil, false},
	} {
		if got := Unavailable(tc.err); got != tc.unavailable {
			t.Errorf("%s: Unavailable(%v) = %v, want %v", tc.name, tc.err, got, tc.unavailable)
		}
	}
	// A record that never reached the store recorded nothing: its outcome
	// is known, and the caller may remove the request's files.
	for name, req := range map[string]Request{
		"one file":        {Jobs: []New{{ID: cursor, Target: "t", Filename: "f", ObjectKey: "k", SHA256: "x"}}},
		"keyed request":   {IdempotencyKey: "k", Jobs: []New{{ID: cursor, Target: "t", Filename: "f", ObjectKey: "k", SHA256: "x"}}},
		"with its marker": {Markers: []string{"k"}, Jobs: []New{{ID: cursor, Target: "t", Filename: "f", ObjectKey: "k", SHA256: "x"}}},
	} {
		for store, pool := range map[string]*pgxpool.Pool{"refused": dead, "closed": closedPool} {
			_, _, err := NewStore(pool).RecordRequest(ctx, req)
			if err == nil || errors.Is(err, ErrOutcomeUnknown) || !Unavailable(err) {
				t.Errorf("%s, store %s: RecordRequest = %v, want an outage with a known outcome", name, store, err)
			}
		}
	}
	if !errors.Is(badCursor, ErrInvalidCursor) {
		t.Errorf("malformed cursor: %v, want ErrInvalidCursor", badCursor)
	}
	if errors.Is(deadErr, ErrInvalidCursor) {
		t.Errorf("store down: %v is ErrInvalidCursor", deadErr)
	}
}
