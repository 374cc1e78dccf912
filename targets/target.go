package targets

import (
	"fmt"
	"maps"
	"sort"
)

// Target is a configured target: its policy and its connector.
type Target struct {
	Config
	Deliverer Deliverer
}

// Constructor builds a kind's connector from its configuration.
type Constructor func(Config) (Deliverer, error)

// Set is the configured targets, by name.
type Set map[string]*Target

// Build makes a Set from configurations, using kinds to build each
// connector.
func Build(configs []Config, kinds map[string]Constructor) (Set, error) {
	set := Set{}
	for _, c := range configs {
		newFn, ok := kinds[c.Kind]
		if !ok {
			known := sort.StringSlice(nil)
			for k := range maps.Keys(kinds) {
				known = append(known, k)
			}
			known.Sort()
			return nil, fmt.Errorf("target %s: unknown kind %q (known: %v)", c.Name, c.Kind, known)
		}
		d, err := newFn(c)
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", c.Name, err)
		}
		set[c.Name] = &Target{Config: c, Deliverer: d}
	}
	return set, nil
}

// Names returns the target names, sorted.
func (s Set) Names() []string {
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// MergeParams returns the target's default parameters overridden by params.
func (t *Target) MergeParams(params map[string]string) map[string]string {
	out := maps.Clone(t.Params)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, params)
	return out
}

// Limit is a cap shared across target entries and processes: at most Max
// deliveries at once of every target that names Group.
type Limit struct {
	Group string
	Max   int
}

// Limits are the shared caps t's deliveries count against: its
// limit_group, or else its own max_in_flight and the cap of the remote
// system its connector reports (targets.SharedLimiter: a Workfront
// instance's ten requests). A limit_group replaces the connector's cap.
func (t *Target) Limits() []Limit {
	if t.LimitGroup != "" {
		return []Limit{{Group: t.LimitGroup, Max: t.MaxInFlight}}
	}
	var out []Limit
	if t.MaxInFlight > 0 {
		out = append(out, Limit{Group: "target-" + t.Name, Max: t.MaxInFlight})
	}
	if sl, ok := t.Deliverer.(SharedLimiter); ok {
		if group, n := sl.SharedLimit(); group != "" && n > 0 {
			out = append(out, Limit{Group: group, Max: n})
		}
	}
	return out
}
