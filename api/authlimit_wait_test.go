package api

import (
	"testing"
	"time"
)

// A check that finds its address's tokens all held by checks under way is
// told when one ends: a good key's burst of connections is not refused
// while the first checks run; with no check under way there is nothing to
// wait for.
func TestFailedAuthsWaitForChecksUnderWay(t *testing.T) {
	f := newFailedAuths(1, 1)
	now := time.Now()
	if d, _ := f.take("a", now); d != 0 {
		t.Fatalf("first take: wait %s", d)
	}
	d, wake := f.take("a", now)
	if d == 0 || wake == nil {
		t.Fatalf("second take: wait %s, wake %v; want a wait and a channel (a check is under way)", d, wake)
	}
	f.refund("a") // the first check's key was good
	select {
	case <-wake:
	default:
		t.Fatal("the refund did not wake the waiter")
	}
	if d, _ := f.take("a", now); d != 0 {
		t.Fatalf("after the refund: wait %s, want the token back", d)
	}
	f.spend("a") // a bad key: its token is gone
	if d, wake := f.take("a", now); d == 0 || wake != nil {
		t.Fatalf("after a bad key: wait %s, wake %v; want a wait and nothing to wait for", d, wake)
	}
}
