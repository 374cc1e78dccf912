package worker_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a test starts (workers, sweepers, NATS and MinIO
// clients, embedded servers) is gone when the tests end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
