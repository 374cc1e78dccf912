package index

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
)

// DefaultDir is the state folder of one (source, server, target):
// $XDG_STATE_HOME/ferry/sync/<hash>, or ~/.local/state/ferry/sync/<hash>.
func DefaultDir(source, server, target string) (string, error) {
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", errors.New("no $XDG_STATE_HOME and no home folder: pass --state")
		}
		base = filepath.Join(home, ".local", "state")
	}
	h := sha256.Sum256([]byte(source + "\n" + server + "\n" + target))
	return filepath.Join(base, "ferry", "sync", hex.EncodeToString(h[:8])), nil
}
