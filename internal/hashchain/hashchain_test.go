package hashchain

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// A file hashed as parts, each resumed from the state the part before
// left, gives the SHA-256 of the whole; a wrong link does not.
func TestChainGivesTheWholeSHA256(t *testing.T) {
	data := make([]byte, 10*BlockSize*7+13)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	want := sha256.Sum256(data)
	for _, partSize := range []int{BlockSize, 3 * BlockSize, 7 * BlockSize, len(data)} {
		state, off := Initial(), 0
		var got string
		for off < len(data) {
			end := min(off+partSize, len(data))
			h, err := Resume(state, int64(off))
			if err != nil {
				t.Fatal(err)
			}
			h.Write(data[off:end])
			if end == len(data) {
				got = hex.EncodeToString(h.Sum(nil))
				break
			}
			if state, err = State(h); err != nil {
				t.Fatal(err)
			}
			off = end
		}
		if got != hex.EncodeToString(want[:]) {
			t.Errorf("part size %d: chain gave %s, want %x", partSize, got, want)
		}
	}
}

func TestBadStates(t *testing.T) {
	for _, tc := range []struct {
		state string
		off   int64
	}{
		{"zz", 0},
		{Initial()[:62], 0},
		{Initial(), 65},
		{Initial(), -64},
	} {
		if _, err := Resume(tc.state, tc.off); err == nil {
			t.Errorf("Resume(%q, %d) accepted", tc.state, tc.off)
		}
	}
	h := sha256.New()
	h.Write([]byte("not a block"))
	if _, err := State(h); err == nil {
		t.Error("State mid-block accepted")
	}
}
