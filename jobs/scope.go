package jobs

import "fmt"

// TenantDefault is the tenant of rows created without one, and of every row
// that existed before tenants did.
const TenantDefault = "default"

// Scope is which tenants' jobs and batches a query may see: one tenant's,
// or (for administrators) every tenant's. The zero Scope sees nothing, so a
// caller that forgets to scope a query gets no rows, never all of them.
type Scope struct {
	tenant string
	all    bool
}

// InTenant is the scope of one tenant.
func InTenant(tenant string) Scope { return Scope{tenant: tenant} }

// AllTenants is the scope that sees every tenant.
func AllTenants() Scope { return Scope{all: true} }

// All reports whether the scope sees every tenant.
func (s Scope) All() bool { return s.all }

// Tenant is the scope's tenant; "" for AllTenants.
func (s Scope) Tenant() string { return s.tenant }

// Allows reports whether a row of tenant is in the scope.
func (s Scope) Allows(tenant string) bool { return s.all || (s.tenant != "" && s.tenant == tenant) }

// String names the scope for errors and logs.
func (s Scope) String() string {
	if s.all {
		return "all tenants"
	}
	return fmt.Sprintf("tenant %q", s.tenant)
}

// query returns the condition on column col that keeps a query in the
// scope, and the query's arguments: args, then the scope's own.
func (s Scope) query(col string, args ...any) (string, []any) {
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	return s.sql(col, arg), args
}

// sql returns the condition on column col that keeps a query in the
// scope, adding its parameter with arg.
func (s Scope) sql(col string, arg func(any) string) string {
	if s.all {
		return "true"
	}
	return col + " = " + arg(s.tenant)
}
