package apitypes

import "time"

// Identity is who an API key speaks for (GET /v1/whoami).
type Identity struct {
	// ID is the key's number, as the audit trail shows it.
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// Tenant is the tenant whose jobs and batches the key sees.
	Tenant string `json:"tenant"`
	// Role is admin, operator or uploader.
	Role string `json:"role"`
	// ExpiresAt is when the key stops working, if it ever does.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// APIKey is an API key as listed: never the key itself.
type APIKey struct {
	Identity
	// Prefix is the key's first characters, to tell keys apart.
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// APIKeyList is the body of GET /v1/apikeys.
type APIKeyList struct {
	Keys []APIKey `json:"keys"`
}

// NewAPIKey is the body of POST /v1/apikeys.
type NewAPIKey struct {
	// Name says what the key is for; unique among keys in use.
	Name string `json:"name"`
	// Tenant is "default" when empty.
	Tenant string `json:"tenant,omitempty"`
	// Role is admin, operator or uploader; operator when empty.
	Role string `json:"role,omitempty"`
	// ExpiresIn is a duration such as "720h"; empty for a key that does
	// not expire.
	ExpiresIn string `json:"expires_in,omitempty"`
}

// CreatedAPIKey answers POST /v1/apikeys: the key, shown this once.
type CreatedAPIKey struct {
	Key  string `json:"key"`
	Info APIKey `json:"info"`
}

// AuditEntry is one state change in the audit trail.
type AuditEntry struct {
	ID int64     `json:"id"`
	At time.Time `json:"at"`
	// KeyID is the API key that made the change; 0 for the CLI.
	KeyID   int64  `json:"key_id,omitempty"`
	KeyName string `json:"key_name"`
	// Tenant is the tenant of the key that made the change.
	Tenant string `json:"tenant"`
	// Action is job.retry, job.cancel, jobs.requeue, batch.requeue,
	// batch.create, apikey.create, apikey.revoke or target.resume.
	Action string `json:"action"`
	// Subject is what changed: a job id, a batch or key name.
	Subject string `json:"subject"`
	// Detail is the rest of the change: filters, counts, role.
	Detail map[string]any `json:"detail"`
}

// AuditPage is the body of GET /v1/audit, newest first.
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	// NextCursor fetches the next page; "" on the last.
	NextCursor string `json:"next_cursor"`
}
