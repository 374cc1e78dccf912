package index

// Ops a record may have pending.
const (
	OpUpload = "upload"
	OpDelete = "delete"
)

// Record is what sync knows of one path of the source.
type Record struct {
	// Size, MTime (Unix nanoseconds), Inode and ETag are the file as last
	// seen stable. Size -1 means "look again": the stat matches nothing.
	Size  int64
	MTime int64
	Inode uint64
	ETag  string
	// SHA256 is the content last seen stable (hex).
	SHA256 string
	// Accepted is the SHA-256 ferry accepted last for the document, with
	// its job and version.
	Accepted string
	Job      string
	Version  int
	// Pending is the op to send (OpUpload of PendingSHA, or OpDelete),
	// recorded before it is sent so a crash re-sends the same.
	Pending    string
	PendingSHA string
	Attempts   int
	// LastError is why the last attempt failed; Refused is the SHA-256
	// ferry refused for good (not sent again until the content changes).
	LastError string
	Refused   string
	// Seeded marks a record made from ferry's documents, not yet seen in
	// the source.
	Seeded bool
}

// SameStat reports whether the record's stat is the one given.
func (r Record) SameStat(size, mtime int64, inode uint64, etag string) bool {
	return r.Size == size && r.MTime == mtime && r.Inode == inode && r.ETag == etag
}

// Meta is the index's own record.
type Meta struct {
	Source string `json:"source"`
	Server string `json:"server"`
	Target string `json:"target"`
	// Seeded is set once ferry's documents were read into the index.
	Seeded bool `json:"seeded"`
	// LastFullScan is the end of the last complete pass (Unix seconds).
	LastFullScan int64 `json:"last_full_scan,omitempty"`
}

// Stat is the part of a Record a pass compares with what it lists.
type Stat struct {
	Size  int64
	MTime int64
	Inode uint64
	ETag  string
	// Seeded and PendingDelete are the record's Seeded and whether its
	// Pending is OpDelete.
	Seeded        bool
	PendingDelete bool
}
