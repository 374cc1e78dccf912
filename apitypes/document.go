package apitypes

import "time"

// StatusSuperseded is the final status of a version overtaken by a newer
// one of the same document before it started: it is never delivered.
const StatusSuperseded Status = "SUPERSEDED"

// Document states.
const (
	DocumentActive  = "active"
	DocumentDeleted = "deleted"
)

// Document is one logical file at one target, named by the client's key
// (GET /v1/documents/{id}, and each row of GET /v1/documents).
type Document struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	Target string `json:"target"`
	Key    string `json:"key"`
	State  string `json:"state"`
	// Remote is what the target's connector reported of the document
	// (its id there, version id, ETag...).
	Remote map[string]string `json:"remote"`
	// Versions is how many versions were accepted (deletes included).
	Versions int `json:"versions"`
	// Current is the latest version delivered, if any.
	Current   *DocumentVersion `json:"current,omitempty"`
	CreatedAt time.Time        `json:"created_at"`
	UpdatedAt time.Time        `json:"updated_at"`
	// History is every version, oldest first (GET /v1/documents/{id} only).
	History []DocumentVersion `json:"history,omitempty"`
	URL     string            `json:"url"`
}

// DocumentVersion is one version of a document: a job.
type DocumentVersion struct {
	Version int    `json:"version"`
	Job     string `json:"job"`
	// Op is "put" (a content) or "delete".
	Op          string     `json:"op"`
	Status      Status     `json:"status"`
	SHA256      string     `json:"sha256,omitempty"`
	Size        int64      `json:"size"`
	AcceptedAt  time.Time  `json:"accepted_at"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	// RemoteVersion is the target's id for this version, when it gives one.
	RemoteVersion string `json:"remote_version,omitempty"`
}

// DocumentList is a page of documents (GET /v1/documents), by key.
type DocumentList struct {
	Documents  []Document `json:"documents"`
	NextCursor string     `json:"next_cursor"`
}
