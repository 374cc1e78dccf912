package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-relay/ferry/client/syncer"
	"github.com/ferry-relay/ferry/client/syncer/index"
	"github.com/ferry-relay/ferry/internal/termtext"
)

// syncStatusOps is how many pending ops ferry sync status lists.
const syncStatusOps = 100

func syncStatusCommand() *cobra.Command {
	var f syncFlags
	cmd := &cobra.Command{
		Use:   "status [SOURCE --target T] [--state DIR] [--json]",
		Short: "Show a sync's state: tracked files, pending changes, and whether it is running",
		Long: `Show what a sync's state holds: the source, server and target, the files tracked, the
changes pending (not yet accepted by ferry) and the last full scan. Name the state with
--state, or with the SOURCE, --target and --server the sync was run with. While a sync runs
(it holds the state), its status as it last wrote it (every second) is shown.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := statusStateDir(args, &f)
			if err != nil {
				return exitWith(exitSyncUsage, err)
			}
			return showSyncStatus(cmd.OutOrStdout(), dir, f.asJSON)
		},
	}
	f.api.bind(cmd.Flags())
	cmd.Flags().StringVar(&f.o.Target, "target", "", "target the sync keeps in step (with SOURCE)")
	cmd.Flags().StringVar(&f.state, "state", "", "state folder")
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print JSON")
	return cmd
}

// statusStateDir is the state folder named by --state or by SOURCE.
func statusStateDir(args []string, f *syncFlags) (string, error) {
	switch {
	case f.state != "":
		return filepath.Abs(f.state)
	case len(args) == 1 && f.o.Target != "":
		src := args[0]
		if !strings.HasPrefix(src, "s3://") {
			abs, err := filepath.Abs(src)
			if err != nil {
				return "", err
			}
			src = filepath.Clean(abs)
		}
		return f.stateDir(src)
	}
	return "", errors.New("name the state: --state DIR, or SOURCE with --target (and --server) as the sync was run")
}

// showSyncStatus prints the state, or the running sync's status file when
// the state is locked.
func showSyncStatus(w io.Writer, dir string, asJSON bool) error {
	x, err := index.OpenReadOnly(dir, 100*time.Millisecond)
	var le *index.LockedError
	if errors.As(err, &le) {
		return showRunning(w, dir, le, asJSON)
	}
	if err != nil {
		return exitWith(exitSyncUsage, err)
	}
	defer x.Close()
	s, err := syncer.Summarize(x, syncStatusOps)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(w).Encode(struct {
			State   string `json:"state"`
			Running bool   `json:"running"`
			syncer.StateSummary
		}{dir, false, s})
	}
	fmt.Fprintf(w, "state    %s (no sync running)\nsource   %s\ntarget   %s at %s\n", dir, s.Source, s.Target, s.Server)
	fmt.Fprintf(w, "tracked  %d, pending %d, refused %d\n", s.Tracked, s.Pending, s.Refused)
	if s.LastFullScan > 0 {
		fmt.Fprintf(w, "scanned  %s\n", time.Unix(s.LastFullScan, 0).UTC().Format(time.RFC3339))
	}
	printOps(w, s.Ops, s.Pending)
	return nil
}

// showRunning prints the status a running sync wrote.
func showRunning(w io.Writer, dir string, le *index.LockedError, asJSON bool) error {
	b, err := os.ReadFile(filepath.Join(dir, statusFile))
	if err != nil {
		return fmt.Errorf("%w; it has written no status yet", le)
	}
	if asJSON {
		_, err := w.Write(append(b, '\n'))
		return err
	}
	var rs runningStatus
	if err := json.Unmarshal(b, &rs); err != nil {
		return fmt.Errorf("%s: %w", statusFile, err)
	}
	fmt.Fprintf(w, "state    %s (sync running, pid %d; as of %s)\n", dir, rs.PID, rs.Updated.Format(time.RFC3339))
	fmt.Fprintln(w, statusText(rs.Status))
	printOps(w, rs.Pending, rs.Status.Pending)
	return nil
}

func printOps(w io.Writer, ops []syncer.PendingOp, total int) {
	if len(ops) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PENDING\tPATH\tATTEMPTS\tLAST ERROR")
	for _, o := range ops {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", o.Op, termtext.CleanText(o.Path), o.Attempts, termtext.CleanText(o.LastError))
	}
	_ = tw.Flush()
	if total > len(ops) {
		fmt.Fprintf(w, "... and %d more\n", total-len(ops))
	}
}
