package api

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/ferry-relay/ferry/internal/hashchain"
	"github.com/ferry-relay/ferry/jobs"
)

// The parts' chain proves the file's SHA-256 only when it is whole and
// linked: part 1 from the initial state, each part from where the one
// before ended. Anything else is no proof (""), and complete reads the
// file back instead of trusting it.
func TestProvenSHA256(t *testing.T) {
	const partSize = 4 * hashchain.BlockSize
	data := make([]byte, 3*partSize+10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	want := sha256.Sum256(data)
	parts := make([]jobs.Part, 3)
	h := sha256.New()
	for i := range parts {
		in, err := hashchain.State(h)
		if err != nil {
			t.Fatal(err)
		}
		end := (i + 1) * partSize
		if i == len(parts)-1 {
			end = len(data) // the last part holds the remainder
		}
		h.Write(data[i*partSize : end])
		out := hex.EncodeToString(h.Sum(nil))
		if i < len(parts)-1 {
			if out, err = hashchain.State(h); err != nil {
				t.Fatal(err)
			}
		}
		parts[i] = jobs.Part{N: i + 1, ChainIn: in, ChainOut: out}
	}
	session := func(ps ...jobs.Part) jobs.Session { return jobs.Session{Parts: 3, Received: ps} }
	broken := parts[1]
	broken.ChainIn = parts[2].ChainIn
	unchained := parts[1]
	unchained.ChainIn = ""
	tests := []struct {
		name string
		ss   jobs.Session
		want string
	}{
		{"whole and linked", session(parts...), hex.EncodeToString(want[:])},
		{"a part missing", session(parts[0], parts[2]), ""},
		{"a link broken", session(parts[0], broken, parts[2]), ""},
		{"a part without a chain", session(parts[0], unchained, parts[2]), ""},
		{"not from the initial state", session(parts[1], parts[1], parts[2]), ""},
	}
	for _, tc := range tests {
		if got := provenSHA256(tc.ss); got != tc.want {
			t.Errorf("%s: proven %q, want %q", tc.name, got, tc.want)
		}
	}
}
