package index_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/client/syncer/index"
)

func TestIndexLockAndRecords(t *testing.T) {
	dir := t.TempDir()
	x, err := index.Open(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = index.Open(dir, 50*time.Millisecond)
	var le *index.LockedError
	if !errors.Is(err, index.ErrLocked) || !errors.As(err, &le) || le.PID == 0 {
		t.Fatalf("second open: %v", err)
	}
	err = x.Update(func(tx *index.Tx) error {
		if err := tx.Put("a", index.Record{Size: 1, SHA256: "s", Pending: index.OpUpload, PendingSHA: "s"}); err != nil {
			return err
		}
		if err := tx.Put("b/c", index.Record{Size: 2}); err != nil {
			return err
		}
		return tx.Put("b/d", index.Record{Size: 3, Pending: index.OpDelete})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = x.View(func(tx *index.Tx) error {
		if tracked, pending := tx.Counts(); tracked != 3 || pending != 2 {
			t.Errorf("counts %d %d", tracked, pending)
		}
		var under []string
		_ = tx.Each("b/", func(p string, _ index.Record) error { under = append(under, p); return nil })
		if len(under) != 2 {
			t.Errorf("under b/: %v", under)
		}
		var pend []string
		_ = tx.Pending("a", 10, func(p string) error { pend = append(pend, p); return nil })
		if len(pend) != 1 || pend[0] != "b/d" {
			t.Errorf("pending after a: %v", pend)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	y, err := index.Open(dir, time.Second)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	_ = y.Update(func(tx *index.Tx) error { return tx.Put("a", index.Record{Size: 1}) })
	_ = y.View(func(tx *index.Tx) error {
		if _, pending := tx.Counts(); pending != 1 {
			t.Errorf("pending after the upload done: %d", pending)
		}
		return nil
	})
	_ = y.Close()
}

func TestGetStat(t *testing.T) {
	x, err := index.Open(t.TempDir(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	recs := map[string]index.Record{
		"plain": {Size: 5, MTime: -7, Inode: 1 << 40, SHA256: "abc", Accepted: "abc", Job: "j", Version: 3},
		"del":   {Size: 1, ETag: "\"e\"", Seeded: true, Pending: index.OpDelete, LastError: "x", Refused: "y"},
		"up":    {Size: -1, Pending: index.OpUpload, PendingSHA: "s", Attempts: 2},
	}
	err = x.Update(func(tx *index.Tx) error {
		for p, r := range recs {
			if err := tx.Put(p, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = x.View(func(tx *index.Tx) error {
		for p, r := range recs {
			s, ok, err := tx.GetStat(p)
			want := index.Stat{Size: r.Size, MTime: r.MTime, Inode: r.Inode, ETag: r.ETag, Seeded: r.Seeded, PendingDelete: r.Pending == index.OpDelete}
			if err != nil || !ok || s != want {
				t.Errorf("%s: %+v %v %v, want %+v", p, s, ok, err, want)
			}
		}
		if _, ok, err := tx.GetStat("none"); ok || err != nil {
			t.Errorf("none: %v %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
