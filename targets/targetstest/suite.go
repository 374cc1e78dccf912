// Package targetstest is the test suite every connector must pass, run
// against the connector's fake target system over real HTTP.
package targetstest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/targets"
)

// Document is a file complete in a fake target: bytes arrived and, for
// multi-step protocols, attached where they belong.
type Document struct {
	// RemoteID is the id the fake gave the document; the connector must
	// return it as Result.RemoteID.
	RemoteID string
	// Name is the filename the fake recorded.
	Name string
	// SHA256 is the hex SHA-256 of the bytes the fake received.
	SHA256 string
	// Size is how many bytes the fake received.
	Size int64
}

// Fake is what the suite needs from a fake target system.
type Fake interface {
	// Documents lists the documents complete in the fake.
	Documents() []Document
	// Steps names the protocol's steps in the order a delivery takes them,
	// as FailNext understands them, e.g. {"uploadInit", "upload"}.
	Steps() []string
	// FailNext makes the next request of step fail the way the real system
	// does when it is briefly unavailable (a 503, say).
	FailNext(step string)
	// ExpireCredentials makes the token or session the connector holds
	// invalid, as if it had expired.
	ExpireCredentials()
}

// Harness builds a fresh fake and a connector pointed at it.
type Harness struct {
	// New returns the connector under test and its fake. Params are the
	// per-job parameters every delivery needs for this kind.
	New func(t *testing.T) (targets.Deliverer, Fake, map[string]string)
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	t.Run("MixedSizesByteIdentical", func(t *testing.T) { testMixedSizes(t, h) })
	t.Run("ResumesAtFailedStep", func(t *testing.T) { testResume(t, h) })
	t.Run("RenewsExpiredCredentials", func(t *testing.T) { testExpiredCredentials(t, h) })
	t.Run("CanceledContext", func(t *testing.T) { testCanceled(t, h) })
}

// File is an in-memory stored file for a Delivery in tests.
type File struct {
	Name string
	Data []byte
}

// NewDelivery returns a Delivery of f whose checkpoint is kept in memory,
// the way the worker keeps it in Postgres.
func NewDelivery(f File, params map[string]string) *targets.Delivery {
	sum := sha256.Sum256(f.Data)
	d := targets.NewDelivery(
		func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(f.Data)), nil
		},
		func(context.Context, targets.Checkpoint) error { return nil },
	)
	d.JobID = fmt.Sprintf("job-%x", sum[:6])
	d.Filename = f.Name
	d.ContentType = "application/octet-stream"
	d.Size = int64(len(f.Data))
	d.SHA256 = hex.EncodeToString(sum[:])
	d.Params = params
	return d
}

// RandomBytes returns n reproducible pseudo-random bytes.
func RandomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func find(docs []Document, sha string) []Document {
	var out []Document
	for _, d := range docs {
		if d.SHA256 == sha {
			out = append(out, d)
		}
	}
	return out
}

func testMixedSizes(t *testing.T, h Harness) {
	c, fake, params := h.New(t)
	sizes := []int{0, 1, 1000, 64 << 10, 3<<20 + 7}
	for i, n := range sizes {
		f := File{Name: fmt.Sprintf("Facture été %d.pdf", i), Data: RandomBytes(n, uint64(i+1))}
		d := NewDelivery(f, params)
		res, err := c.Deliver(ctx(t), d)
		if err != nil {
			t.Fatalf("deliver %d bytes: %v", n, err)
		}
		got := find(fake.Documents(), d.SHA256)
		if len(got) != 1 {
			t.Fatalf("%d bytes: fake holds %d documents with sha %s, want 1", n, len(got), d.SHA256)
		}
		if got[0].Size != int64(n) || got[0].Name != f.Name {
			t.Errorf("fake recorded %q %d bytes, want %q %d", got[0].Name, got[0].Size, f.Name, n)
		}
		if got[0].RemoteID == "" || res.RemoteID != got[0].RemoteID {
			t.Errorf("remote id %q, fake says %q", res.RemoteID, got[0].RemoteID)
		}
	}
}

func testResume(t *testing.T, h Harness) {
	_, probe, _ := h.New(t)
	steps := probe.Steps()
	for i, step := range steps {
		t.Run(step, func(t *testing.T) {
			c, fake, params := h.New(t)
			d := NewDelivery(File{Name: "resume.bin", Data: RandomBytes(100<<10, uint64(100+i))}, params)
			fake.FailNext(step)
			_, err := c.Deliver(ctx(t), d)
			if err == nil {
				t.Fatalf("step %s failed in the fake but Deliver succeeded", step)
			}
			if targets.IsPermanent(err) {
				t.Fatalf("a brief failure at %s must be retryable, got permanent: %v", step, err)
			}
			if n := len(find(fake.Documents(), d.SHA256)); n != 0 {
				t.Fatalf("after failed attempt the fake holds %d documents, want 0", n)
			}
			res, err := c.Deliver(ctx(t), d)
			if err != nil {
				t.Fatalf("retry after failed %s: %v", step, err)
			}
			docs := fake.Documents()
			if n := len(find(docs, d.SHA256)); n != 1 || len(docs) != 1 {
				t.Fatalf("after retry the fake holds %d documents (%d with the sha), want exactly 1", len(docs), n)
			}
			if res.RemoteID != docs[0].RemoteID {
				t.Errorf("remote id %q, fake says %q", res.RemoteID, docs[0].RemoteID)
			}
		})
	}
}

func testExpiredCredentials(t *testing.T, h Harness) {
	c, fake, params := h.New(t)
	first := NewDelivery(File{Name: "a.txt", Data: []byte("first")}, params)
	if _, err := c.Deliver(ctx(t), first); err != nil {
		t.Fatalf("first delivery: %v", err)
	}
	fake.ExpireCredentials()
	second := NewDelivery(File{Name: "b.txt", Data: []byte("second")}, params)
	if _, err := c.Deliver(ctx(t), second); err != nil {
		t.Fatalf("delivery after credentials expired must renew them within the attempt: %v", err)
	}
	if n := len(find(fake.Documents(), second.SHA256)); n != 1 {
		t.Fatalf("fake holds %d copies of the second file, want 1", n)
	}
}

func testCanceled(t *testing.T, h Harness) {
	c, fake, params := h.New(t)
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := NewDelivery(File{Name: "never.txt", Data: []byte("never")}, params)
	if _, err := c.Deliver(cctx, d); err == nil {
		t.Fatal("Deliver with a canceled context succeeded")
	}
	if n := len(fake.Documents()); n != 0 {
		t.Fatalf("fake holds %d documents after a canceled delivery", n)
	}
}
