package main

import "testing"

func TestWithoutPoolSettings(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u@h:5432/db?sslmode=disable", "postgres://u@h:5432/db?sslmode=disable"},
		{"postgres://u@h:5432/db?pool_max_conns=10&sslmode=disable", "postgres://u@h:5432/db?sslmode=disable"},
		{"postgres://u@h/db?pool_max_conns=5&pool_min_conns=1", "postgres://u@h/db"},
	} {
		if got := withoutPoolSettings(tc.in); got != tc.want {
			t.Errorf("withoutPoolSettings(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
