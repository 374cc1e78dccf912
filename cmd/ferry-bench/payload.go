package main

import (
	"io"
	"math/rand/v2"
)

// block is random data that cheap payloads cycle through. MinIO neither
// compresses nor de-duplicates, so cycling costs the server what fresh data
// would, and costs the client almost nothing: on two cores every cycle the
// client spends is one the servers lose.
var block = func() []byte {
	b := make([]byte, 1<<20)
	_, _ = rand.NewChaCha8([32]byte{'f', 'e', 'r', 'r', 'y'}).Read(b)
	return b
}()

// blockReader yields size bytes of block, starting at an offset. It is a
// plain io.Reader (no ReadAt, no Seek), like an HTTP request body, so that
// minio-go takes the same streaming path for the raw limit as for ferry.
type blockReader struct {
	off  int
	left int64
}

func newBlockReader(seed int, size int64) *blockReader {
	return &blockReader{off: (seed * 4099) % len(block), left: size}
}

func (r *blockReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := copy(p, block[r.off:])
	r.off = (r.off + n) % len(block)
	r.left -= int64(n)
	return n, nil
}

// prngReader yields size bytes from a seeded ChaCha8 stream, generated as
// it is read: a file of any size without holding it.
type prngReader struct {
	src  *rand.ChaCha8
	left int64
}

func newPRNGReader(seed byte, size int64) *prngReader {
	return &prngReader{src: rand.NewChaCha8([32]byte{seed}), left: size}
}

func (r *prngReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, _ := r.src.Read(p)
	r.left -= int64(n)
	return n, nil
}
