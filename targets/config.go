package targets

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults of a target's delivery policy.
const (
	MaxAttemptsDefault    = 10
	BackoffInitialDefault = 2 * time.Second
	BackoffMaxDefault     = 10 * time.Minute
	// MaxRetryAfterDefault caps the wait a target may ask for with
	// Retry-After.
	MaxRetryAfterDefault = 6 * time.Hour
	TimeoutDefault       = 5 * time.Minute
	ConcurrencyDefault   = 4
	// CredentialProbeDefault is the first wait between probes of a
	// target paused for refused credentials.
	CredentialProbeDefault = time.Minute
	// CredentialProbeMax caps the wait between probes.
	CredentialProbeMax = 15 * time.Minute
)

// nameRE restricts target names to what is safe in a NATS subject token and a
// URL: the worker consumes each target's subject separately.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// tenantRE is the form of a tenant name (apikeys.CheckTenant).
var tenantRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Config is one entry of the targets file: the settings common to every
// kind, plus the kind's own settings, decoded by its constructor with
// Settings.
type Config struct {
	// Name is unique in the file; uploads name their target by it.
	Name string `yaml:"name"`
	// Kind selects the connector: http, workfront-webhook, workfront, 4d,
	// blueworks.
	Kind string `yaml:"kind"`
	// MaxAttempts is how many attempts a job gets before it is FAILED.
	MaxAttempts int `yaml:"max_attempts"`
	// Backoff is the wait between attempts.
	Backoff Backoff `yaml:"backoff"`
	// MaxRetryAfter caps the wait a target asks for with Retry-After
	// (MaxRetryAfterDefault if zero): a target that says "come back in 285
	// years" gets its next attempt after this.
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
	// Timeout bounds one attempt.
	Timeout time.Duration `yaml:"timeout"`
	// Concurrency is the most deliveries in flight to this target in one
	// worker process.
	Concurrency int `yaml:"concurrency"`
	// Params are default per-job parameters; an upload's param.<name>
	// fields override them.
	Params map[string]string `yaml:"params"`
	// MaxInFlight is the most deliveries in flight to this target across
	// every worker process (0: no cap beyond Concurrency per process). With
	// LimitGroup it is the cap the group's entries share.
	MaxInFlight int `yaml:"max_in_flight"`
	// LimitGroup names a cap shared by every entry that gives the same
	// name, across every worker process: at most MaxInFlight deliveries
	// of all those entries run at once. Entries of one group must agree
	// on MaxInFlight. A Workfront entry without it joins the group of its
	// instance (see targets.SharedLimiter).
	LimitGroup string `yaml:"limit_group"`
	// Rate is the most delivery requests per second to this target,
	// shared by every worker process (0: unpaced). It adapts: a 429 or
	// 503 lowers it for a while, successes raise it back slowly, never
	// above Rate (see package rates).
	Rate float64 `yaml:"rate"`
	// Burst is how many requests may go at once after a quiet time (with
	// Rate; default 1).
	Burst int `yaml:"burst"`
	// CredentialProbe is how often a target paused for refused
	// credentials is probed (default 1m, doubling up to 15m while they
	// stay refused).
	CredentialProbe time.Duration `yaml:"credential_probe"`
	// Tenants, when set, are the only tenants whose keys may use the
	// target; absent, every tenant may. Administrators may use any target.
	Tenants []string `yaml:"tenants"`
	// Versions says how a new version of a document is delivered, where a
	// kind lets the targets file choose (issue 21): http takes put, post
	// or none (the default), blueworks refuse (the default) or append.
	// The other kinds version documents their system's own way and refuse
	// the setting (their constructors check: VersionsFor).
	Versions string `yaml:"versions"`
	// OnConflict is what an http target with versions: put does when the
	// target changed behind ferry's back (a 412): fail (the default) or
	// overwrite.
	OnConflict string `yaml:"on_conflict"`
	// Traceparent false keeps the W3C traceparent header off the
	// requests to this target (a system that refuses unknown headers);
	// absent or true, a traced delivery sends it (tracing.go).
	Traceparent *bool `yaml:"traceparent"`

	settings yaml.Node
}

// Backoff is exponential backoff with full jitter: the wait before attempt
// n+1 is a random duration in [0, min(Max, Initial*2^(n-1))].
type Backoff struct {
	Initial time.Duration `yaml:"initial"`
	Max     time.Duration `yaml:"max"`
}

// Delay returns the wait after the given number of failed attempts (1 after
// the first failure). rnd returns a float in [0,1); nil uses math/rand.
func (b Backoff) Delay(failures int, rnd func() float64) time.Duration {
	if rnd == nil {
		rnd = rand.Float64
	}
	ceil := b.Initial
	for i := 1; i < failures && ceil < b.Max; i++ {
		ceil *= 2
	}
	ceil = min(ceil, b.Max)
	return time.Duration(rnd() * float64(ceil))
}

// WithDefaults returns c with every unset policy field at its default.
func (c Config) WithDefaults() Config {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = MaxAttemptsDefault
	}
	if c.Backoff.Initial == 0 {
		c.Backoff.Initial = BackoffInitialDefault
	}
	if c.Backoff.Max == 0 {
		c.Backoff.Max = max(BackoffMaxDefault, c.Backoff.Initial)
	}
	if c.Timeout == 0 {
		c.Timeout = TimeoutDefault
	}
	if c.MaxRetryAfter == 0 {
		c.MaxRetryAfter = MaxRetryAfterDefault
	}
	if c.Concurrency == 0 {
		c.Concurrency = ConcurrencyDefault
	}
	if c.CredentialProbe == 0 {
		c.CredentialProbe = CredentialProbeDefault
	}
	return c
}

// Validate checks the common settings.
func (c Config) Validate() error {
	switch {
	case !nameRE.MatchString(c.Name):
		return fmt.Errorf("target name %q: use 1-64 letters, digits, '-' or '_'", c.Name)
	case c.Kind == "":
		return fmt.Errorf("target %s: kind is required", c.Name)
	case c.MaxAttempts < 1:
		return fmt.Errorf("target %s: max_attempts must be at least 1", c.Name)
	case c.Backoff.Initial < 0 || c.Backoff.Max < c.Backoff.Initial:
		return fmt.Errorf("target %s: backoff needs 0 <= initial <= max", c.Name)
	case c.Timeout <= 0:
		return fmt.Errorf("target %s: timeout must be positive", c.Name)
	case c.MaxRetryAfter < 0:
		return fmt.Errorf("target %s: max_retry_after must not be negative", c.Name)
	case c.Concurrency < 1:
		return fmt.Errorf("target %s: concurrency must be at least 1", c.Name)
	case c.MaxInFlight < 0:
		return fmt.Errorf("target %s: max_in_flight must not be negative", c.Name)
	case c.LimitGroup != "" && !nameRE.MatchString(c.LimitGroup):
		return fmt.Errorf("target %s: limit_group %q: use 1-64 letters, digits, '-' or '_'", c.Name, c.LimitGroup)
	case c.LimitGroup != "" && c.MaxInFlight == 0:
		return fmt.Errorf("target %s: limit_group %s needs max_in_flight, the cap its entries share", c.Name, c.LimitGroup)
	case c.Rate < 0 || c.Burst < 0:
		return fmt.Errorf("target %s: rate and burst must not be negative", c.Name)
	case c.Burst > 0 && c.Rate == 0:
		return fmt.Errorf("target %s: burst needs a rate", c.Name)
	case c.CredentialProbe < time.Second:
		return fmt.Errorf("target %s: credential_probe must be at least 1s", c.Name)
	}
	if !slices.Contains(versionModes, c.Versions) {
		return fmt.Errorf("target %s: versions %q: use one of %v", c.Name, c.Versions, versionModes[1:])
	}
	if c.OnConflict != "" && c.OnConflict != OnConflictFail && c.OnConflict != OnConflictOverwrite {
		return fmt.Errorf("target %s: on_conflict %q: use fail or overwrite", c.Name, c.OnConflict)
	}
	for _, t := range c.Tenants {
		if !tenantRE.MatchString(t) {
			return fmt.Errorf("target %s: tenant %q: use 1-63 lowercase letters, digits, '-' or '_'", c.Name, t)
		}
	}
	return nil
}

// Settings decodes the kind's own settings (every key of the entry) into v,
// refusing keys that neither v nor the common settings know.
func (c Config) Settings(v any) error {
	if c.settings.Kind == 0 {
		return nil
	}
	// Decode once into v, strictly, with the common keys removed.
	node := c.settings
	node.Content = nil
	for i := 0; i+1 < len(c.settings.Content); i += 2 {
		if commonKeys[c.settings.Content[i].Value] {
			continue
		}
		node.Content = append(node.Content, c.settings.Content[i], c.settings.Content[i+1])
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(&node); err != nil {
		return fmt.Errorf("target %s: %w", c.Name, err)
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("target %s (%s): %w", c.Name, c.Kind, err)
	}
	return nil
}

// Values of Config.Versions and Config.OnConflict.
const (
	VersionsNone        = "none"
	VersionsPut         = "put"
	VersionsPost        = "post"
	VersionsRefuse      = "refuse"
	VersionsAppend      = "append"
	OnConflictFail      = "fail"
	OnConflictOverwrite = "overwrite"
)

// versionModes are the values of versions any kind takes ("" is unset).
var versionModes = []string{"", VersionsNone, VersionsPut, VersionsPost, VersionsRefuse, VersionsAppend}

// VersionsFor checks the target's versions and on_conflict against what
// its kind takes (allowed: the values of versions, the first its default;
// none for a kind that takes no versions setting) and returns the mode in
// force. on_conflict is only for versions: put.
func (c Config) VersionsFor(allowed ...string) (string, error) {
	if c.Versions != "" && !slices.Contains(allowed, c.Versions) {
		if len(allowed) == 0 {
			return "", fmt.Errorf("target %s: kind %s versions documents its own way: remove versions: %s", c.Name, c.Kind, c.Versions)
		}
		return "", fmt.Errorf("target %s: kind %s takes versions: %s, not %s", c.Name, c.Kind, strings.Join(allowed, ", "), c.Versions)
	}
	mode := c.Versions
	if mode == "" && len(allowed) > 0 {
		mode = allowed[0]
	}
	if c.OnConflict != "" && mode != VersionsPut {
		return "", fmt.Errorf("target %s: on_conflict is for kind http with versions: put", c.Name)
	}
	return mode, nil
}

var commonKeys = map[string]bool{
	"name": true, "kind": true, "max_attempts": true, "backoff": true,
	"timeout": true, "concurrency": true, "params": true, "tenants": true,
	"max_in_flight": true, "limit_group": true, "credential_probe": true,
	"max_retry_after": true, "rate": true, "burst": true,
	"versions": true, "on_conflict": true, "traceparent": true,
}

// AllowsTenant reports whether keys of tenant may use the target.
func (c Config) AllowsTenant(tenant string) bool {
	return len(c.Tenants) == 0 || slices.Contains(c.Tenants, tenant)
}

// UnmarshalYAML keeps the whole entry for Settings.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	type plain Config
	var p plain
	// Decode only the common keys here; the rest belongs to the kind.
	common := *n
	common.Content = nil
	for i := 0; i+1 < len(n.Content); i += 2 {
		if commonKeys[n.Content[i].Value] {
			common.Content = append(common.Content, n.Content[i], n.Content[i+1])
		}
	}
	if err := common.Decode(&p); err != nil {
		return err
	}
	*c = Config(p)
	c.settings = *n
	return nil
}

// File is the targets file.
type File struct {
	Targets []Config `yaml:"targets"`
}

// expandScalars replaces ${VAR} in every scalar value of the tree (not in
// mapping keys, nor comments). A plain scalar is resolved again after its
// expansion, so "max_attempts: ${N}" is a number; a quoted one stays a
// string.
func expandScalars(n *yaml.Node, mapping func(string) string) {
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		n.Value = os.Expand(n.Value, mapping)
		if n.Style == 0 {
			// A plain scalar: resolve the expanded value (a number stays a
			// number), except to null: a secret "null" or "~" is text.
			n.Tag = ""
			if n.ShortTag() == "!!null" {
				n.Tag = "!!str"
			}
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			expandScalars(n.Content[i], mapping)
		}
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			expandScalars(c, mapping)
		}
	case yaml.AliasNode:
		// The anchored node is expanded where it is defined.
	}
}

// ParseFile reads a targets file. ${VAR} in it is replaced by lookup(VAR),
// so secrets can stay in the environment; an unset variable is an error.
// Every entry gets its defaults and is validated; names must be unique.
func ParseFile(r io.Reader, lookup func(string) (string, bool)) ([]Config, error) {
	raw, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read targets file: %w", err)
	}
	// Parse first, then expand ${VAR} inside each scalar value: a secret
	// is never read as YAML, so "pa #ss" or "a: b" stay what they are.
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("targets file: %w", err)
	}
	var missing []string
	expandScalars(&doc, func(name string) string {
		if name == "$" {
			return "$" // "$$" stays a literal dollar
		}
		v, ok := lookup(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("targets file: environment variables not set: %v", missing)
	}
	var f File
	if len(doc.Content) > 0 {
		if err := doc.Decode(&f); err != nil {
			return nil, fmt.Errorf("targets file: %w", err)
		}
	}
	seen := map[string]bool{}
	groupCap := map[string]int{}
	for i, c := range f.Targets {
		c = c.WithDefaults()
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("targets file: %w", err)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("targets file: target %q defined twice", c.Name)
		}
		seen[c.Name] = true
		if c.LimitGroup != "" {
			if n, ok := groupCap[c.LimitGroup]; ok && n != c.MaxInFlight {
				return nil, fmt.Errorf("targets file: limit_group %s: entries give max_in_flight %d and %d; give them one cap", c.LimitGroup, n, c.MaxInFlight)
			}
			groupCap[c.LimitGroup] = c.MaxInFlight
		}
		f.Targets[i] = c
	}
	return f.Targets, nil
}
