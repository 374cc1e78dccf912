package syncer

import "testing"

func TestDeleteLimit(t *testing.T) {
	for _, c := range []struct {
		s          string
		n, tracked int
		ok         bool
	}{
		{"10%", 10, 100, true}, {"10%", 11, 100, false}, {"10%", 1, 3, true}, {"10%", 2, 3, false},
		{"100%", 50, 50, true}, {"5", 5, 10, true}, {"5", 6, 1000, false}, {"0", 1, 10, false},
	} {
		l, err := ParseDeleteLimit(c.s)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.Allows(c.n, c.tracked); got != c.ok {
			t.Errorf("%s allows %d of %d: %v", c.s, c.n, c.tracked, got)
		}
	}
	for _, bad := range []string{"x", "120%", "-1", "%"} {
		if _, err := ParseDeleteLimit(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
