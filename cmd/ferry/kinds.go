package main

import (
	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/targets/blueworks"
	"github.com/ferry-relay/ferry/targets/fourd"
	"github.com/ferry-relay/ferry/targets/httptarget"
	"github.com/ferry-relay/ferry/targets/workfront"
	"github.com/ferry-relay/ferry/targets/workfronthook"
)

// kinds are the connectors a targets file may name.
var kinds = map[string]targets.Constructor{
	"http":              httptarget.New,
	"workfront-webhook": workfronthook.New,
	"workfront":         workfront.New,
	"4d":                fourd.New,
	"blueworks":         blueworks.New,
}
