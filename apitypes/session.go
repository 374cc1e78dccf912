package apitypes

import "time"

// NewUploadSession asks for an upload session: one large file sent in
// numbered parts, in parallel, resumable (POST /v1/uploads/sessions).
type NewUploadSession struct {
	Target   string `json:"target,omitempty"`
	Filename string `json:"filename"`
	Size     int64  `json:"size"`
	// SHA256 of the whole file, in hex: here or at completion.
	SHA256      string            `json:"sha256,omitempty"`
	ContentType string            `json:"content_type,omitempty"`
	Batch       string            `json:"batch,omitempty"`
	Path        string            `json:"path,omitempty"`
	Params      map[string]string `json:"params,omitempty"`
	// Document makes the file a version of the document with this key
	// at the target (as field document of POST /v1/uploads).
	Document string `json:"document,omitempty"`
}

// UploadSession is where an upload session stands.
type UploadSession struct {
	ID       string `json:"id"`
	State    string `json:"state"` // open, completed, aborted
	Target   string `json:"target"`
	Filename string `json:"filename"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256,omitempty"`
	// PartSize is the size of every part but the last (the remainder).
	PartSize int64 `json:"part_size"`
	Parts    int   `json:"parts"`
	// PartURL is the template of a part's address: {n} is its number.
	PartURL  string `json:"part_url"`
	Received []Part `json:"received"`
	// Missing are the numbers of the parts not received yet.
	Missing []int `json:"missing"`
	// BytesReceived counts every part byte the session took, parts sent
	// again included.
	BytesReceived int64     `json:"bytes_received"`
	ExpiresAt     time.Time `json:"expires_at"`
	// Job is the job the file became, once completed.
	Job string `json:"job,omitempty"`
}

// Part is one part an upload session received.
type Part struct {
	N      int    `json:"n"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// CompleteUploadSession completes a session; SHA256 is required if the
// session was created without it.
type CompleteUploadSession struct {
	SHA256 string `json:"sha256,omitempty"`
}
