// Package hashchain proves the SHA-256 of a file sent in parts without
// reading it back: each part is hashed on its own, starting from the
// SHA-256 state the sender says the bytes before it left (its "chain in"),
// and ending in the state after it (its "chain out"). When part 1 starts
// from SHA-256's initial state and every part's chain in is the chain out
// of the part before, the last chain out is the state after the whole file,
// and its digest is the file's SHA-256: every byte was hashed by the
// receiver, and the sender only saved it the wait for the parts before.
//
// A state is the eight 32-bit words of SHA-256's intermediate hash value,
// big-endian, in hex (64 characters). It is only defined at a multiple of
// 64 bytes, SHA-256's block: part sizes must be multiples of 64.
package hashchain

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
)

// BlockSize is the granularity of a state: part sizes are multiples of it.
const BlockSize = sha256.BlockSize

// Go's crypto/sha256 marshals a digest as this magic, the eight words, the
// block buffer (64 bytes) and the length (8 bytes).
const (
	magic         = "sha\x03"
	wordsLen      = 32
	marshaledSize = len(magic) + wordsLen + BlockSize + 8
)

// ErrState means a state is malformed or not at a block boundary.
var ErrState = errors.New("bad SHA-256 chain state")

// Initial is the state before any byte: SHA-256's initial hash value.
func Initial() string {
	s, _ := State(sha256.New())
	return s
}

// Resume returns a SHA-256 digest in state, as after offset bytes (a
// multiple of BlockSize): writing the rest of the file to it gives the
// file's SHA-256.
func Resume(state string, offset int64) (hash.Hash, error) {
	words, err := hex.DecodeString(state)
	if err != nil || len(words) != wordsLen || offset < 0 || offset%BlockSize != 0 {
		return nil, fmt.Errorf("%w: %q at %d", ErrState, state, offset)
	}
	b := make([]byte, 0, marshaledSize)
	b = append(b, magic...)
	b = append(b, words...)
	b = append(b, make([]byte, BlockSize)...)
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	return h, nil
}

// State returns the state of h, a SHA-256 digest that has taken a multiple
// of BlockSize bytes.
func State(h hash.Hash) (string, error) {
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return "", fmt.Errorf("%w: not a SHA-256 digest", ErrState)
	}
	b, err := m.MarshalBinary()
	if err != nil || len(b) != marshaledSize || string(b[:len(magic)]) != magic {
		return "", fmt.Errorf("%w: cannot read the digest's state", ErrState)
	}
	if binary.BigEndian.Uint64(b[len(b)-8:])%BlockSize != 0 {
		return "", fmt.Errorf("%w: not at a block boundary", ErrState)
	}
	return hex.EncodeToString(b[len(magic) : len(magic)+wordsLen]), nil
}

// Sum returns the SHA-256, in hex, of a file whose bytes before its last
// part left state, and whose last part is tail.
func Sum(state string, offset int64, tail []byte) (string, error) {
	h, err := Resume(state, offset)
	if err != nil {
		return "", err
	}
	h.Write(tail)
	return hex.EncodeToString(h.Sum(nil)), nil
}
