package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/client"
)

func jobsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "jobs", Short: "List, show, re-queue and cancel jobs over the status API"}
	cmd.AddCommand(jobsListCommand(), jobsShowCommand(), jobsRetryCommand(), jobsCancelCommand())
	return cmd
}

func jobsListCommand() *cobra.Command {
	var api apiFlags
	var f client.JobFilter
	var status string
	var all, asJSON bool
	var more string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			f.Status = apitypes.Status(strings.ToUpper(status))
			out := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			if !asJSON {
				fmt.Fprintln(tw, "ID\tSTATUS\tATTEMPTS\tTARGET\tBATCH\tFILENAME\tLAST ERROR")
			}
			for {
				list, next, err := c.Jobs(cmd.Context(), f)
				if err != nil {
					return err
				}
				for _, j := range list {
					if asJSON {
						if err := printJSON(out, j); err != nil {
							return err
						}
						continue
					}
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", j.ID, j.Status, j.Attempts, j.Target,
						printable(j.Batch), printable(j.Filename), printable(shorten(j.LastError, 80)))
				}
				if next == "" {
					break
				}
				if !all {
					more = next
					break
				}
				f.Cursor = next
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if more != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "more jobs match than the %d listed: --all lists every one, --cursor %s the next page\n", f.Limit, more)
			}
			return nil
		},
	}
	api.bind(cmd.Flags())
	cmd.Flags().StringVar(&status, "status", "", "only jobs in this status ("+statusNames()+")")
	cmd.Flags().StringVar(&f.Target, "target", "", "only jobs for this target")
	cmd.Flags().StringVar(&f.Batch, "batch", "", "only jobs of this batch")
	cmd.Flags().IntVar(&f.Limit, "limit", 100, "jobs per page (1-1000)")
	cmd.Flags().BoolVar(&all, "all", false, "page through every matching job")
	cmd.Flags().StringVar(&f.Cursor, "cursor", "", "start at this page (the cursor a listing with more pages prints)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each job as JSON")
	return cmd
}

func jobsShowCommand() *cobra.Command {
	var api apiFlags
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a job and every attempt at delivering it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			job, err := c.Job(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			attempts, err := c.Attempts(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), map[string]any{"job": job, "attempts": attempts})
		},
	}
	api.bind(cmd.Flags())
	return cmd
}

func jobsRetryCommand() *cobra.Command {
	var api apiFlags
	var f apitypes.RequeueFilter
	var allFailed bool
	cmd := &cobra.Command{
		Use:   "retry ID | --target T --batch B --error SUBSTRING | --all-failed",
		Short: "Re-queue FAILED jobs: one by id, those matching a filter, or all of them",
		Long: `Re-queue FAILED jobs, their attempts counted from zero.

  ferry jobs retry 0190a7d2-...                 one job (FAILED or CANCELED)
  ferry jobs retry --batch B --error timeout    the FAILED jobs matching every filter given
  ferry jobs retry --all-failed                 every FAILED job`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case len(args) == 1 && (!f.Empty() || allFailed):
				return errors.New("give a job id or a filter, not both")
			case len(args) == 1:
				job, err := c.RetryJob(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "job %s re-queued (%s)\n", job.ID, job.Status)
				return nil
			case f.Empty() && !allFailed:
				return errors.New("name a job id, a filter (--target, --batch, --error) or --all-failed")
			case !f.Empty() && allFailed:
				return errors.New("--all-failed re-queues every FAILED job: give it without a filter")
			}
			n, err := c.RetryFailed(cmd.Context(), f, allFailed)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%d jobs re-queued\n", n)
			return nil
		},
	}
	api.bind(cmd.Flags())
	cmd.Flags().StringVar(&f.Target, "target", "", "FAILED jobs for this target")
	cmd.Flags().StringVar(&f.Batch, "batch", "", "FAILED jobs of this batch")
	cmd.Flags().StringVar(&f.Error, "error", "", "FAILED jobs whose last error contains this (ignoring case)")
	cmd.Flags().BoolVar(&allFailed, "all-failed", false, "every FAILED job")
	return cmd
}

func jobsCancelCommand() *cobra.Command {
	var api apiFlags
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a QUEUED or RETRYING job",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			job, err := c.CancelJob(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "job %s %s\n", job.ID, job.Status)
			return nil
		},
	}
	api.bind(cmd.Flags())
	return cmd
}

// statusNames lists the statuses for a flag's help.
func statusNames() string {
	names := make([]string, len(apitypes.Statuses))
	for i, st := range apitypes.Statuses {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}

func shorten(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
