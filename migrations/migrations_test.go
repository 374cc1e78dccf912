package migrations_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/migrations"
)

func tables(t *testing.T, pool *pgxpool.Pool) map[string]bool {
	rows, err := pool.Query(context.Background(), `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		out[n] = true
	}
	return out
}

// TestUpDownUp checks every down migration undoes its up migration.
func TestUpDownUp(t *testing.T) {
	pool, url := testenv.Postgres(t) // migrated up
	v, dirty, err := migrations.Version(url)
	if err != nil || dirty || v == 0 {
		t.Fatalf("version %d dirty=%v err=%v", v, dirty, err)
	}
	for _, want := range []string{"jobs", "attempts", "api_keys"} {
		if !tables(t, pool)[want] {
			t.Errorf("table %s missing after up", want)
		}
	}
	if err := migrations.Down(url); err != nil {
		t.Fatal(err)
	}
	left := tables(t, pool)
	delete(left, "schema_migrations")
	if len(left) != 0 {
		t.Errorf("tables left after down: %v", left)
	}
	if err := migrations.Up(url); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if err := migrations.Up(url); err != nil {
		t.Fatalf("up when up to date: %v", err)
	}
}
