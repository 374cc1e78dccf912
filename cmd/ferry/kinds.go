package main

import (
	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/targets/httptarget"
)

// kinds are the connectors a targets file may name.
var kinds = map[string]targets.Constructor{
	"http": httptarget.New,
}
