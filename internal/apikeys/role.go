package apikeys

import (
	"fmt"
	"regexp"
)

// Role is what a key may do.
type Role string

// The roles, from most to least trusted.
const (
	// RoleAdmin may do everything, in every tenant: read and change any
	// tenant's jobs, read the audit trail, manage keys.
	RoleAdmin Role = "admin"
	// RoleOperator may read, upload, retry, cancel and re-queue in bulk
	// within its own tenant, and ask for a paused target to be probed.
	RoleOperator Role = "operator"
	// RoleUploader may upload (and create batches) and read its own
	// tenant's jobs; it may retry or cancel one job, never in bulk, and
	// never act on a target (targets are shared by every tenant).
	RoleUploader Role = "uploader"
)

// RoleDefault is the role of a key created without one.
const RoleDefault = RoleOperator

// TenantDefault is the tenant of a key created without one, and of every
// row that existed before tenants did.
const TenantDefault = "default"

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleAdmin, RoleOperator, RoleUploader:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q: use admin, operator or uploader", s)
}

// Permission is one kind of act a role may be allowed.
type Permission int

// The permissions the API checks.
const (
	// PermRead reads jobs, batches, reports and targets.
	PermRead Permission = iota
	// PermUpload uploads files and creates batches.
	PermUpload
	// PermChange retries or cancels one job.
	PermChange
	// PermProbe asks for a paused target to be probed now. Target state
	// is shared by every tenant, so it is an operator's act.
	PermProbe
	// PermDelete deletes documents at their targets (issue 21):
	// operators and admins, not uploaders.
	PermDelete
	// PermBulk re-queues many jobs at once.
	PermBulk
	// PermAdmin reads the audit trail, manages keys and reaches across
	// tenants.
	PermAdmin
)

func (p Permission) String() string {
	switch p {
	case PermRead:
		return "read"
	case PermUpload:
		return "upload"
	case PermChange:
		return "retry or cancel"
	case PermProbe:
		return "probe a target"
	case PermDelete:
		return "delete documents"
	case PermBulk:
		return "re-queue in bulk"
	case PermAdmin:
		return "administer"
	}
	return fmt.Sprintf("permission(%d)", int(p))
}

// Can reports whether the role grants p. The permissions are ordered from
// least to most trusted: each role grants those up to its highest.
func (r Role) Can(p Permission) bool {
	switch r {
	case RoleAdmin:
		return true
	case RoleOperator:
		return p <= PermBulk
	case RoleUploader:
		return p <= PermChange
	}
	return false
}

// tenantRE keeps tenant names safe in URLs, logs and listings.
var tenantRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// CheckTenant refuses a name that cannot be a tenant's: 1-63 lowercase
// letters, digits, '-' or '_', starting with a letter or digit.
func CheckTenant(name string) error {
	if !tenantRE.MatchString(name) {
		return fmt.Errorf("tenant %q: use 1-63 lowercase letters, digits, '-' or '_'", name)
	}
	return nil
}
