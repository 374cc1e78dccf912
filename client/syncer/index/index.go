// Package index is ferry sync's local state: per path of the source, the
// stat and content last seen, what ferry accepted, and the op pending. It
// is one bbolt file, so a crash at any moment leaves it consistent, and a
// lock on it keeps a second sync off the same state.
package index

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrLocked means another process holds the state.
var ErrLocked = errors.New("state is locked by another ferry sync")

// LockedError is ErrLocked with what is known of the holder.
type LockedError struct {
	Dir string
	// PID is the holder's process id, 0 if unknown.
	PID int
}

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("another ferry sync (pid %d) is running on state %s", e.PID, e.Dir)
	}
	return "another ferry sync is running on state " + e.Dir
}

func (e *LockedError) Unwrap() error { return ErrLocked }

var (
	bucketFiles   = []byte("files")
	bucketPending = []byte("pending")
	bucketMeta    = []byte("meta")
	keyMeta       = []byte("meta")
)

const (
	fileName = "index.db"
	pidName  = "pid"
)

// Index is an open state folder.
type Index struct {
	db  *bolt.DB
	dir string
}

// Open opens (creating) the state in dir, locked for this process until
// Close; a state another process holds is a *LockedError after waiting
// up to wait.
func Open(dir string, wait time.Duration) (*Index, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state %s: %w", dir, err)
	}
	db, err := bolt.Open(filepath.Join(dir, fileName), 0o600, &bolt.Options{Timeout: wait})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, &LockedError{Dir: dir, PID: readPID(dir)}
	}
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", dir, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketFiles, bucketPending, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("state %s: %w", dir, err)
	}
	_ = os.WriteFile(filepath.Join(dir, pidName), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	return &Index{db: db, dir: dir}, nil
}

// OpenReadOnly opens the state to read it while a sync may hold it: it
// waits up to wait for the lock, as bbolt's shared lock is refused while a
// writer holds it. Use Peek to read a locked state.
func OpenReadOnly(dir string, wait time.Duration) (*Index, error) {
	p := filepath.Join(dir, fileName)
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("state %s: %w", dir, err)
	}
	db, err := bolt.Open(p, 0o600, &bolt.Options{Timeout: wait, ReadOnly: true})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, &LockedError{Dir: dir, PID: readPID(dir)}
	}
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", dir, err)
	}
	return &Index{db: db, dir: dir}, nil
}

func readPID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, pidName))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// Dir is the state folder.
func (x *Index) Dir() string { return x.dir }

// Close releases the state.
func (x *Index) Close() error {
	if !x.db.IsReadOnly() {
		_ = os.Remove(filepath.Join(x.dir, pidName))
	}
	return x.db.Close()
}

// Tx is a read or write transaction on the records.
type Tx struct {
	tx *bolt.Tx
}

// Update runs fn in one write transaction: all its changes are written
// with one sync, or none.
func (x *Index) Update(fn func(*Tx) error) error {
	return x.db.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// View runs fn in a read transaction.
func (x *Index) View(fn func(*Tx) error) error {
	return x.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// Get returns the record of path.
func (t *Tx) Get(path string) (Record, bool, error) {
	v := t.tx.Bucket(bucketFiles).Get([]byte(path))
	if v == nil {
		return Record{}, false, nil
	}
	r, err := decode(v)
	if err != nil {
		return Record{}, false, fmt.Errorf("record %q: %w", path, err)
	}
	return r, true, nil
}

// GetStat returns the stat part of the record of path: cheaper than Get
// for the usual case of a file that did not change.
func (t *Tx) GetStat(path string) (Stat, bool, error) {
	v := t.tx.Bucket(bucketFiles).Get([]byte(path))
	if v == nil {
		return Stat{}, false, nil
	}
	s, err := decodeStat(v)
	if err != nil {
		return Stat{}, false, errRecord(path, err)
	}
	return s, true, nil
}

func errRecord(path string, err error) error { return fmt.Errorf("record %q: %w", path, err) }

// Put writes the record of path, and keeps the set of pending paths.
func (t *Tx) Put(path string, r Record) error {
	if err := t.tx.Bucket(bucketFiles).Put([]byte(path), r.encode()); err != nil {
		return err
	}
	if r.Pending != "" {
		return t.tx.Bucket(bucketPending).Put([]byte(path), nil)
	}
	return t.tx.Bucket(bucketPending).Delete([]byte(path))
}

// Delete forgets path.
func (t *Tx) Delete(path string) error {
	if err := t.tx.Bucket(bucketFiles).Delete([]byte(path)); err != nil {
		return err
	}
	return t.tx.Bucket(bucketPending).Delete([]byte(path))
}

// Each calls fn with every record whose path starts with prefix, by path.
func (t *Tx) Each(prefix string, fn func(path string, r Record) error) error {
	c := t.tx.Bucket(bucketFiles).Cursor()
	p := []byte(prefix)
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		r, err := decode(v)
		if err != nil {
			return fmt.Errorf("record %q: %w", k, err)
		}
		if err := fn(string(k), r); err != nil {
			return err
		}
	}
	return nil
}

// Keys calls fn with every path that starts with prefix, by path, without
// reading the records; the path's bytes are valid only during the call.
func (t *Tx) Keys(prefix string, fn func(path []byte) error) error {
	c := t.tx.Bucket(bucketFiles).Cursor()
	p := []byte(prefix)
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

// Pending calls fn with up to limit pending paths after the path after
// ("" from the first), by path.
func (t *Tx) Pending(after string, limit int, fn func(path string) error) error {
	c := t.tx.Bucket(bucketPending).Cursor()
	k, _ := c.Seek([]byte(after))
	if k != nil && after != "" && string(k) == after {
		k, _ = c.Next()
	}
	for n := 0; k != nil && n < limit; k, _ = c.Next() {
		if err := fn(string(k)); err != nil {
			return err
		}
		n++
	}
	return nil
}

// Counts returns how many paths are tracked and how many have an op
// pending.
func (t *Tx) Counts() (tracked, pending int) {
	return t.tx.Bucket(bucketFiles).Stats().KeyN, t.tx.Bucket(bucketPending).Stats().KeyN
}

// Meta returns the index's own record.
func (t *Tx) Meta() (Meta, error) {
	var m Meta
	v := t.tx.Bucket(bucketMeta).Get(keyMeta)
	if v == nil {
		return m, nil
	}
	if err := json.Unmarshal(v, &m); err != nil {
		return m, fmt.Errorf("meta: %w", err)
	}
	return m, nil
}

// SetMeta writes the index's own record.
func (t *Tx) SetMeta(m Meta) error {
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bucketMeta).Put(keyMeta, v)
}
