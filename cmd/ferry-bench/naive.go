package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-relay/ferry/storage"
)

// naive is the limit ferry's pipeline is compared with: the component
// operations of one job and nothing else. Upload: MinIO put, one Postgres
// insert, one JetStream publish. Delivery: fetch, MinIO get, HTTP PUT to the
// target, one Postgres update, ack.
type naive struct {
	e    *env
	pool *pgxpool.Pool
	nc   *nats.Conn
	js   jetstream.JetStream
	conc int
	http *http.Client
	opts minio.PutObjectOptions
}

func newNaive(ctx context.Context, e *env, pool *pgxpool.Pool, natsURL string, conc int) (*naive, error) {
	_, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS naive_jobs (
		id uuid PRIMARY KEY, object_key text NOT NULL, size bigint NOT NULL, status text NOT NULL,
		created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())`)
	if err != nil {
		return nil, fmt.Errorf("naive table: %w", err)
	}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return nil, fmt.Errorf("naive nats: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "NAIVE", Subjects: []string{"naive.>"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage})
	if err == nil {
		_, err = js.CreateOrUpdateConsumer(ctx, "NAIVE", jetstream.ConsumerConfig{Durable: "naive",
			AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxAckPending: 1000})
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("naive stream: %w", err)
	}
	return &naive{e: e, pool: pool, nc: nc, js: js, conc: conc,
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}},
		// The same options as ferry's storage.
		opts: minio.PutObjectOptions{ContentType: "application/octet-stream", PartSize: storage.PartSizeDefault, DisableContentSha256: true},
	}, nil
}

func (nv *naive) close() {
	nv.http.CloseIdleConnections()
	nv.nc.Close()
}

// upload stores one file, records it and publishes it; it returns the id.
func (nv *naive) upload(ctx context.Context, i int, size int64) (string, error) {
	id := uuid.Must(uuid.NewV7()).String()
	key := "naive/" + id
	if _, err := nv.e.s3.PutObject(ctx, nv.e.cfg.Bucket, key, newBlockReader(i, size), size, nv.opts); err != nil {
		return "", fmt.Errorf("naive put: %w", err)
	}
	if _, err := nv.pool.Exec(ctx, `INSERT INTO naive_jobs (id, object_key, size, status) VALUES ($1, $2, $3, 'QUEUED')`,
		id, key, size); err != nil {
		return "", fmt.Errorf("naive insert: %w", err)
	}
	if _, err := nv.js.Publish(ctx, "naive.jobs."+id, []byte(id+" "+strconv.FormatInt(size, 10))); err != nil {
		return "", fmt.Errorf("naive publish: %w", err)
	}
	return id, nil
}

// deliver runs one message: get the object, PUT it to the target, record
// SUCCESS, ack.
func (nv *naive) deliver(ctx context.Context, m jetstream.Msg) (string, error) {
	id, sizeStr, _ := strings.Cut(string(m.Data()), " ")
	size, _ := strconv.ParseInt(sizeStr, 10, 64)
	obj, err := nv.e.s3.GetObject(ctx, nv.e.cfg.Bucket, "naive/"+id, minio.GetObjectOptions{})
	if err != nil {
		return id, fmt.Errorf("naive get: %w", err)
	}
	defer obj.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, nv.e.sink.url+"/naive", obj)
	if err != nil {
		return id, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Ferry-Job-Id", id)
	resp, err := nv.http.Do(req)
	if err != nil {
		return id, fmt.Errorf("naive PUT: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return id, fmt.Errorf("naive PUT: status %d", resp.StatusCode)
	}
	if _, err := nv.pool.Exec(ctx, `UPDATE naive_jobs SET status = 'SUCCESS', updated_at = now() WHERE id = $1`, id); err != nil {
		return id, fmt.Errorf("naive update: %w", err)
	}
	return id, m.Ack()
}

// startDelivery runs conc delivery goroutines fed by one pull iterator,
// calling done after each job's update. stop ends them and returns the
// first delivery error.
func (nv *naive) startDelivery(ctx context.Context, done func(id string, at time.Time)) (stop func() error, err error) {
	cons, err := nv.js.Consumer(ctx, "NAIVE", "naive")
	if err != nil {
		return nil, fmt.Errorf("naive consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * nv.conc))
	if err != nil {
		return nil, fmt.Errorf("naive fetch: %w", err)
	}
	msgs := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	wg.Go(func() {
		defer close(msgs)
		for {
			m, err := it.Next()
			if err != nil {
				return
			}
			msgs <- m
		}
	})
	for range nv.conc {
		wg.Go(func() {
			for m := range msgs {
				id, err := nv.deliver(ctx, m)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					_ = m.Nak()
					continue
				}
				done(id, time.Now())
			}
		})
	}
	return func() error {
		it.Stop()
		wg.Wait()
		return errors.Join(errs...)
	}, nil
}

// run pushes n files of size through the naive pipeline with conc uploaders
// and returns the time from the first upload to the last update.
func (nv *naive) run(ctx context.Context, n int, size int64) (time.Duration, error) {
	var mu sync.Mutex
	count := 0
	var last time.Time
	all := make(chan struct{})
	stop, err := nv.startDelivery(ctx, func(_ string, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		count++
		if count == n {
			last = at
			close(all)
		}
	})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	_, err = runParallel(ctx, nv.conc, n, func(ctx context.Context, i int) error {
		_, err := nv.upload(ctx, i, size)
		return err
	})
	if err == nil {
		select {
		case <-all:
		case <-ctx.Done():
			mu.Lock()
			err = fmt.Errorf("naive pipeline: %d of %d delivered: %w", count, n, ctx.Err())
			mu.Unlock()
		}
	}
	if serr := stop(); err == nil && serr != nil {
		err = serr
	}
	return last.Sub(start), err
}
