package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ferry-relay/ferry/internal/testenv"
)

func combineTable(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, _ := testenv.Postgres(t)
	if _, err := pool.Exec(context.Background(), `CREATE TABLE combined (k int PRIMARY KEY, v text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return pool
}

func insertCall(k int, v string) *combined {
	cl := &combined{sql: `INSERT INTO combined (k, v) VALUES ($1, $2) RETURNING v`, args: []any{k, v}, done: make(chan struct{})}
	var got string
	cl.scan = func(r pgx.Row) error {
		if err := r.Scan(&got); err != nil {
			return err
		}
		if got != v {
			return fmt.Errorf("got %q, want %q", got, v)
		}
		return nil
	}
	return cl
}

func rowsOf(t *testing.T, pool *pgxpool.Pool) map[int]string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT k, v FROM combined`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for rows.Next() {
		var k int
		var v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

// Concurrent callers each get their own row back, and every row is
// written once.
func TestCombinerConcurrentCallers(t *testing.T) {
	t.Parallel()
	pool := combineTable(t)
	c := newCombiner(pool)
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			var v string
			errs[i] = c.queryRow(context.Background(), `INSERT INTO combined (k, v) VALUES ($1, $2) RETURNING v`,
				[]any{i, fmt.Sprint("v", i)}, func(r pgx.Row) error { return r.Scan(&v) })
			if errs[i] == nil && v != fmt.Sprint("v", i) {
				errs[i] = fmt.Errorf("caller %d got %q", i, v)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	if got := rowsOf(t, pool); len(got) != n {
		t.Errorf("%d rows, want %d", len(got), n)
	}
}

// One refused statement rolls back its batch: the others run again alone
// and are written; the refused one gets Postgres's own error, and a
// statement that matches no row gets pgx.ErrNoRows, an answer.
func TestCombinerBatchWithARefusedStatement(t *testing.T) {
	t.Parallel()
	pool := combineTable(t)
	if _, err := pool.Exec(context.Background(), `INSERT INTO combined VALUES (2, 'taken')`); err != nil {
		t.Fatal(err)
	}
	c := newCombiner(pool)
	none := &combined{sql: `UPDATE combined SET v = 'x' WHERE k = 99 RETURNING v`, done: make(chan struct{}),
		scan: func(r pgx.Row) error { var v string; return r.Scan(&v) }}
	calls := []*combined{insertCall(1, "a"), insertCall(2, "b"), none, insertCall(3, "c")}
	c.run(calls)
	var pe *pgconn.PgError
	if !errors.As(calls[1].err, &pe) || pe.Code != "23505" {
		t.Errorf("refused statement: %v, want a unique violation", calls[1].err)
	}
	if !errors.Is(none.err, pgx.ErrNoRows) {
		t.Errorf("statement matching nothing: %v, want pgx.ErrNoRows", none.err)
	}
	for _, i := range []int{0, 3} {
		if calls[i].err != nil {
			t.Errorf("statement %d: %v", i, calls[i].err)
		}
	}
	got := rowsOf(t, pool)
	if len(got) != 3 || got[1] != "a" || got[2] != "taken" || got[3] != "c" {
		t.Errorf("rows %v", got)
	}
	for _, cl := range calls {
		select {
		case <-cl.done:
		default:
			t.Error("a caller was not told")
		}
	}
}

// A caller whose context ends while its statement waits withdraws it: it
// never runs.
func TestCombinerWithdrawsOnCancel(t *testing.T) {
	t.Parallel()
	pool := combineTable(t)
	c := newCombiner(pool)
	for range combineSlots {
		c.slots <- struct{}{} // every batch slot busy
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.queryRow(ctx, `INSERT INTO combined VALUES (1, 'late')`, nil, func(r pgx.Row) error { return r.Scan() })
	}()
	testenv.WaitFor(t, 10*time.Second, "the statement waits in the queue", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.queue) == 1
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("canceled caller: %v", err)
	}
	for range combineSlots {
		<-c.slots
	}
	if got := rowsOf(t, pool); len(got) != 0 {
		t.Errorf("withdrawn statement ran: %v", got)
	}
	if len(c.queue) != 0 {
		t.Errorf("queue holds %d", len(c.queue))
	}
}
