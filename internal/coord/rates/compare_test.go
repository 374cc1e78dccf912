package rates_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-relay/ferry/internal/testenv"
)

// BenchmarkNATSKVBucket is the alternative the package did not take: the
// same token bucket in a NATS KV key, taken by compare-and-swap (get the
// revision, update with it, again on a conflict), by parallel takers. Run
// beside BenchmarkReserve: go test -run x -bench . ./rates
func BenchmarkNATSKVBucket(b *testing.B) {
	srv := testenv.NATS(b)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "rates"})
	if err != nil {
		b.Fatal(err)
	}
	val := func(tokens float64) []byte {
		return binary.LittleEndian.AppendUint64(nil, math.Float64bits(tokens))
	}
	if _, err := kv.Put(ctx, "t", val(1e9)); err != nil {
		b.Fatal(err)
	}
	var conflicts int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			for {
				e, err := kv.Get(ctx, "t")
				if err != nil {
					b.Error(err)
					return
				}
				tokens := math.Float64frombits(binary.LittleEndian.Uint64(e.Value()))
				_, err = kv.Update(ctx, "t", val(tokens-1), e.Revision())
				var apiErr *jetstream.APIError
				if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
					conflicts++ // racy count, an indication only
					continue
				}
				if err != nil {
					b.Error(err)
					return
				}
				break
			}
		}
	})
	b.ReportMetric(float64(conflicts)/float64(b.N), "conflicts/op")
}
