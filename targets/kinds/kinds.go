// Package kinds is the registry of connectors a targets file may name: the
// binary and the end-to-end tests build their targets from this one map.
package kinds

import (
	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/targets/blueworks"
	"github.com/ferry-relay/ferry/targets/fourd"
	"github.com/ferry-relay/ferry/targets/httptarget"
	"github.com/ferry-relay/ferry/targets/workfront"
	"github.com/ferry-relay/ferry/targets/workfronthook"
)

// All maps each kind a targets file may name to its connector.
var All = map[string]targets.Constructor{
	"http":              httptarget.New,
	"workfront-webhook": workfronthook.New,
	"workfront":         workfront.New,
	"4d":                fourd.New,
	"blueworks":         blueworks.New,
}
