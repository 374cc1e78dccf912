package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/ferry-relay/ferry/client/push"
)

func pushCommand() *cobra.Command {
	var api apiFlags
	var o push.Options
	var params []string
	var progress string
	cmd := &cobra.Command{
		Use:   "push PATH... --target NAME [--param k=v]... [--batch NAME]",
		Short: "Upload a document tree into a batch, with progress; run it again to resume",
		Long: `Upload the files under each PATH (or those a --manifest lists) to a target, in a batch.

Each file is sent with an idempotency key made of the batch, its path (relative to the
PATH it was found under) and its content's SHA-256. Run the same command again after an
interruption and it asks the server which files the batch holds already and sends only
the others: a batch never holds two jobs for one file.

  ferry push ./archive --target blueworks --param locationField=policy --param parentId=P1 --wait
  ferry push ./archive --target blueworks --dry-run
  ferry push --manifest files.csv --target blueworks --batch archive-2026

Every upload declares the file's SHA-256. With --documents, each file is a document at
the target, keyed by its path relative to the PATH it was found under (or as the manifest
writes it): a file whose content changed since an earlier push becomes a new version of
the same document there, and an unchanged one is not sent again (ferry documents list).
Files of --session-threshold or more go through upload sessions, which name their
document too.

A manifest is CSV with a header row: a path column (relative to the manifest's folder),
optionally filename, and param.<name> columns for per-file parameters.

Progress goes to standard error: a bar on a terminal, a line every --progress-interval
otherwise. The summary and the files not accepted go to standard output. The exit status
is 0 only if every file was accepted (and, with --wait, every job of the batch ended
SUCCESS, or SUPERSEDED: a version overtaken by a newer one of its document).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			o.Paths = args
			if o.Params, err = parseParams(params); err != nil {
				return err
			}
			o.Out = cmd.OutOrStdout()
			switch progress {
			case "auto":
				o.Progress = cmd.ErrOrStderr()
				o.Terminal = isTerminal(cmd.ErrOrStderr())
			case "bar":
				o.Progress, o.Terminal = cmd.ErrOrStderr(), true
			case "lines":
				o.Progress = cmd.ErrOrStderr()
			case "none":
			default:
				return fmt.Errorf("--progress must be auto, bar, lines or none")
			}
			_, err = push.Run(cmd.Context(), c, o)
			return err
		},
	}
	api.bind(cmd.Flags())
	bindPushFlags(cmd.Flags(), &o, &params, &progress)
	return cmd
}

// bindPushFlags binds push's own flags to o and the values RunE reads.
func bindPushFlags(fs *pflag.FlagSet, o *push.Options, params *[]string, progress *string) {
	fs.StringVar(&o.Target, "target", "", "target to deliver to (required unless --batch names an existing batch)")
	fs.StringArrayVar(params, "param", nil, "parameter of the batch, as name=value (repeatable)")
	fs.StringVar(&o.Batch, "batch", "", "batch name (default: derived from the paths and the target, so the same command resumes)")
	fs.StringVar(&o.Manifest, "manifest", "", "CSV file listing the files (path, filename, param.<name> columns) instead of PATHs")
	fs.StringArrayVar(&o.Include, "include", nil, "push only files matching this glob (repeatable; '*.pdf', 'scans/**/*.tif')")
	fs.StringArrayVar(&o.Exclude, "exclude", nil, "skip files and folders matching this glob (repeatable)")
	fs.BoolVar(&o.FollowSymlinks, "follow-symlinks", false, "follow symbolic links (skipped by default)")
	fs.IntVar(&o.Concurrency, "concurrency", push.ConcurrencyDefault, "files hashed and sent at once")
	fs.Int64Var(&o.SessionThreshold, "session-threshold", push.SessionThresholdDefault, "files of this many bytes or more go in parts through a resumable upload session (-1: never)")
	fs.IntVar(&o.ParallelParts, "parallel-parts", push.ParallelPartsDefault, "parts of one large file in flight at once")
	fs.BoolVar(&o.Documents, "documents", false, "make each file a document keyed by its relative path: a changed file becomes a new version of it (not for files through upload sessions)")
	fs.BoolVar(&o.DryRun, "dry-run", false, "check everything and list what would be sent; send nothing")
	fs.BoolVar(&o.Wait, "wait", false, "after uploading, watch until every job of the batch is final")
	fs.DurationVar(&o.PollInterval, "poll-interval", push.PollIntervalDefault, "how often --wait asks for the batch's progress")
	fs.StringVar(progress, "progress", "auto", "progress display: auto (a bar on a terminal), bar, lines or none")
	fs.DurationVar(&o.LineInterval, "progress-interval", push.LineIntervalDefault, "time between progress lines when not on a terminal")
}

// parseParams reads name=value pairs.
func parseParams(kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--param %q: want name=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
