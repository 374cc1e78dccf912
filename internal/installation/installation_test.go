package installation_test

import (
	"sync"
	"testing"

	"github.com/ferry-relay/ferry/internal/installation"
	"github.com/ferry-relay/ferry/internal/testenv"
)

// Processes starting together on one database get one id, and it stays;
// another database gets another.
func TestIDIsOnePerDatabase(t *testing.T) {
	t.Parallel()
	ctx := testenv.Context(t)
	pool, _ := testenv.Postgres(t)
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			id, err := installation.ID(ctx, pool)
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || !installation.Valid(id) {
			t.Fatalf("ids %v: want one valid id", ids)
		}
	}
	other, _ := testenv.Postgres(t)
	id, err := installation.ID(ctx, other)
	if err != nil || id == ids[0] {
		t.Fatalf("another database: id %q (%v), first %q", id, err, ids[0])
	}
}
