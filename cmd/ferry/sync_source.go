package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"

	"github.com/ferry-relay/ferry/client/push"
	"github.com/ferry-relay/ferry/client/syncer/source"
)

// openSyncSource returns SOURCE as a source.Source, the state folder, and
// what closes the source.
func openSyncSource(_ context.Context, arg string, f *syncFlags, filter push.Filter) (source.Source, string, func(), error) {
	if strings.HasPrefix(arg, "s3://") {
		return nil, "", nil, exitWith(exitSyncUsage, errors.New("s3:// sources are not in this build yet"))
	}
	root, err := filepath.Abs(arg)
	if err != nil {
		return nil, "", nil, exitWith(exitSyncUsage, err)
	}
	root = filepath.Clean(root)
	state, err := f.stateDir(root)
	if err != nil {
		return nil, "", nil, exitWith(exitSyncUsage, err)
	}
	rules := source.Rules{Filter: filter}
	if rel, ok := insideRel(root, state); ok {
		rules.Skipped = append(rules.Skipped, rel)
	}
	d, err := source.NewDir(root, rules.Skip)
	if err != nil {
		return nil, "", nil, exitWith(exitSyncUsage, err)
	}
	return d, state, func() {}, nil
}
