package kinds_test

import (
	"strings"
	"testing"

	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/targets/kinds"
)

// Kinds that version documents their system's own way refuse the
// targets file's versions and on_conflict; http and blueworks refuse the
// values that are not theirs.
func TestVersionsSetting(t *testing.T) {
	for _, tc := range []struct{ kind, versions, onConflict string }{
		{"workfront", "append", ""},
		{"4d", "put", ""},
		{"workfront-webhook", "post", ""},
		{"workfront", "", "overwrite"},
		{"http", "append", ""},
		{"http", "post", "overwrite"},
		{"blueworks", "put", ""},
		{"blueworks", "append", "fail"},
	} {
		c := targets.Config{Name: "t", Kind: tc.kind, Versions: tc.versions, OnConflict: tc.onConflict}
		_, err := kinds.All[tc.kind](c)
		if err == nil || !strings.Contains(err.Error(), "versions") && !strings.Contains(err.Error(), "on_conflict") {
			t.Errorf("%+v: error %v, want one about versions or on_conflict", tc, err)
		}
	}
}
