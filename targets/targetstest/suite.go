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

	"github.com/ferry-relay/ferry/internal/fakes/contract"
	"github.com/ferry-relay/ferry/targets"
)

// Document is a file complete in a fake target (see fakes/contract, where
// it lives so that the fakes, which the binary links, never import this
// package and with it package testing).
type Document = contract.Document

// Fake is what the suite needs from a fake target system.
type Fake = contract.Fake

// Harness builds a fresh fake and a connector pointed at it.
type Harness struct {
	// New returns the connector under test and its fake. Params are the
	// per-job parameters every delivery needs for this kind.
	New func(t *testing.T) (targets.Deliverer, Fake, map[string]string)
	// Uncertain lists the steps whose lost answer is a documented limit of
	// the kind: the target gives no way to ask whether the step landed,
	// so the retry may create a second document, and must then call
	// Delivery.MarkUncertain.
	Uncertain map[string]bool
	// NoCredentials says the harness's connector sends no credentials, so
	// that the refused-credentials check is skipped.
	NoCredentials bool
	// CredentialsRefusedFor is how long the fake refuses credentials in
	// the refused-credentials check (default 10s).
	CredentialsRefusedFor time.Duration
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	if !h.NoCredentials {
		// The slow check (it waits for the refusal to end) runs beside
		// the others.
		t.Run("CredentialsRefusedThenBack", func(t *testing.T) {
			t.Parallel()
			if err := CheckCredentialsRefused(t, h); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("MixedSizesByteIdentical", func(t *testing.T) { testMixedSizes(t, h) })
	t.Run("ResumesAtFailedStep", func(t *testing.T) { testResume(t, h) })
	t.Run("RenewsExpiredCredentials", func(t *testing.T) { testExpiredCredentials(t, h) })
	t.Run("CanceledContext", func(t *testing.T) { testCanceled(t, h) })
	_, probe, _ := h.New(t)
	for _, step := range probe.Steps() {
		t.Run("AnswerLostAfter/"+step, func(t *testing.T) {
			if err := CheckLostAnswer(t, h, step, false); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("AnswerLostAfter/"+step+"/ThenLookupRefused", func(t *testing.T) {
			if err := CheckLostAnswer(t, h, step, true); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// retryLimit bounds the attempts a check makes, as max_attempts does.
const retryLimit = 8

// CheckLostAnswer delivers one file while the fake carries out step and
// loses its answer, and, with refuseLookup, refuses the connector's next
// lookup as well; it retries like the worker (same Delivery, so the same
// checkpoint) until an attempt succeeds. It returns why the outcome is
// wrong, or nil: exactly one document with the file's bytes and no second
// creation, unless the step is a documented limit (Harness.Uncertain) and
// the connector marked its repeat uncertain.
func CheckLostAnswer(t *testing.T, h Harness, step string, refuseLookup bool) error {
	c, fake, params := h.New(t)
	d := NewDelivery(File{Name: "lost answer.bin", Data: RandomBytes(64<<10, 777)}, params)
	fake.LoseAnswer(step)
	var res targets.Result
	var err error
	for try := range retryLimit {
		if res, err = c.Deliver(ctx(t), d); err == nil {
			break
		}
		if targets.IsPermanent(err) {
			return fmt.Errorf("attempt %d after the %s answer was lost: permanent failure: %w", try+1, step, err)
		}
		if try == 0 && refuseLookup {
			fake.RefuseLookup()
		}
	}
	if err != nil {
		return fmt.Errorf("no success in %d attempts after the %s answer was lost: %w", retryLimit, step, err)
	}
	got := find(fake.Documents(), d.SHA256)
	created := fake.Creations()
	switch {
	case len(got) == 0:
		return fmt.Errorf("lost %s answer: Deliver succeeded but the fake holds no document with the file", step)
	case (len(got) > 1 || created > 1) && !h.Uncertain[step]:
		return fmt.Errorf("lost %s answer: the fake holds %d documents with the file and created %d, want exactly 1", step, len(got), created)
	case (len(got) > 1 || created > 1) && d.Uncertain() == "":
		return fmt.Errorf("lost %s answer: %d documents (%d created), a documented limit, but the repeat was not marked uncertain", step, len(got), created)
	}
	for _, doc := range got {
		if doc.RemoteID == res.RemoteID {
			return nil
		}
	}
	return fmt.Errorf("lost %s answer: remote id %q names none of the fake's documents %v", step, res.RemoteID, got)
}

// CheckCredentialsRefused makes the fake refuse every credential for
// Harness.CredentialsRefusedFor while three files are delivered, each
// retried like the worker every 250ms. It returns why the outcome is wrong,
// or nil: no attempt failed permanently, the refusals were reported as
// such (targets.IsCredentials, so that the worker pauses the target
// rather than fail jobs), and after the refusal every file landed once.
func CheckCredentialsRefused(t *testing.T, h Harness) error {
	c, fake, params := h.New(t)
	refusal := h.CredentialsRefusedFor
	if refusal == 0 {
		refusal = 10 * time.Second
	}
	fake.RefuseCredentials(refusal)
	deadline := time.Now().Add(refusal + 15*time.Second)
	sawRefusal := false
	for i := range 3 {
		d := NewDelivery(File{Name: fmt.Sprintf("refused-%d.txt", i), Data: RandomBytes(1000+i, uint64(900+i))}, params)
		for {
			_, err := c.Deliver(ctx(t), d)
			if err == nil {
				break
			}
			switch {
			case targets.IsPermanent(err):
				return fmt.Errorf("file %d: credentials refused must not fail the job, got permanent: %w", i, err)
			case time.Now().After(deadline):
				return fmt.Errorf("file %d: not delivered %s after the refusal ended: %w", i, deadline.Sub(time.Now().Add(refusal)), err)
			}
			sawRefusal = sawRefusal || targets.IsCredentials(err)
			time.Sleep(250 * time.Millisecond)
		}
		if n := len(find(fake.Documents(), d.SHA256)); n != 1 {
			return fmt.Errorf("file %d: the fake holds %d copies, want 1", i, n)
		}
	}
	if !sawRefusal {
		return fmt.Errorf("no attempt reported the refusal as refused credentials (targets.CredentialsRefused): the worker could not pause the target")
	}
	return nil
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
