package main

import (
	"cmp"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at link time by builds that have no VCS information to stamp (a
// Docker build without .git): -ldflags "-X main.buildCommit=... -X
// main.buildDate=...". Empty otherwise; the build info's VCS stamps then
// answer.
var (
	buildCommit string
	buildDate   string
)

// buildFacts is what `ferry version` prints.
type buildFacts struct {
	Version   string // the module version; (devel) for a build from a checkout
	Commit    string // the VCS revision, "unknown" without one
	Modified  bool   // the checkout had uncommitted changes
	Date      string // the build date (-ldflags) or, without it, the commit date
	DateIsVCS bool   // Date is the commit's, not the build's
	Go        string
}

// readBuildFacts reads the binary's build info: the module version and the
// VCS stamps that `go build` records (-buildvcs), overridden by the
// link-time variables when they are set.
func readBuildFacts(info *debug.BuildInfo, ok bool) buildFacts {
	f := buildFacts{Version: "unknown", Commit: "unknown", Go: runtime.Version()}
	if ok {
		f.Version = cmp.Or(info.Main.Version, "(devel)")
		f.Go = cmp.Or(info.GoVersion, f.Go)
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				f.Commit = s.Value
			case "vcs.time":
				f.Date, f.DateIsVCS = s.Value, true
			case "vcs.modified":
				f.Modified = s.Value == "true"
			}
		}
	}
	if buildCommit != "" {
		f.Commit, f.Modified = buildCommit, false
	}
	if buildDate != "" {
		f.Date, f.DateIsVCS = buildDate, false
	}
	return f
}

func (f buildFacts) print(w io.Writer) {
	commit := f.Commit
	if f.Modified {
		commit += " (modified)"
	}
	fmt.Fprintf(w, "ferry %s\n", f.Version)
	fmt.Fprintf(w, "commit:  %s\n", commit)
	switch {
	case f.Date == "":
		fmt.Fprintln(w, "built:   unknown")
	case f.DateIsVCS:
		fmt.Fprintf(w, "built:   from the commit of %s\n", f.Date)
	default:
		fmt.Fprintf(w, "built:   %s\n", f.Date)
	}
	fmt.Fprintf(w, "go:      %s %s/%s\n", f.Go, runtime.GOOS, runtime.GOARCH)
}

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, VCS commit and build date of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			readBuildFacts(debug.ReadBuildInfo()).print(cmd.OutOrStdout())
			return nil
		},
	}
}
