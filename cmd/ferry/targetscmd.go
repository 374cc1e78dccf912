package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-relay/ferry/apitypes"
)

// targetsCommand shows the targets' states over the API, and resumes a
// paused one.
func targetsCommand() *cobra.Command {
	var api apiFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "targets",
		Short: "Show each target's state (ok, circuit_open, paused_credentials), why and since when, and its shared limits",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			list, err := c.Targets(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), apitypes.TargetList{Targets: list})
			}
			printTargets(cmd.OutOrStdout(), list, time.Now())
			return nil
		},
	}
	api.bind(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")

	var rapi apiFlags
	resume := &cobra.Command{
		Use:   "resume NAME",
		Short: "Probe a target paused for refused credentials (after fixing its secret) or whose circuit is open (after fixing the target) now; it resumes by itself if the probe succeeds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := rapi.client()
			if err != nil {
				return err
			}
			res, err := c.ResumeTarget(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if res.ProbeRequested {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s, probing now; it resumes by itself when the probe succeeds\n", args[0], res.Target.State)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s, not paused: nothing to do\n", args[0], res.Target.State)
			return nil
		},
	}
	rapi.bind(resume.Flags())
	cmd.AddCommand(resume)
	return cmd
}

// printTargets writes one line per target.
func printTargets(out io.Writer, list []apitypes.Target, now time.Time) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tKIND\tSTATE\tSINCE\tNEXT PROBE\tLIMITS\tREASON")
	for _, t := range list {
		since := "-"
		if t.Since != nil {
			since = now.Sub(*t.Since).Round(time.Second).String() + " ago"
		}
		var lims []string
		for _, l := range t.Limits {
			lims = append(lims, fmt.Sprintf("%s %d/%d", l.Group, l.InFlight, l.Max))
		}
		reason := t.Reason
		if len(reason) > 120 {
			reason = reason[:117] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Kind, t.State, since, nextProbe(t, now),
			orDash(strings.Join(lims, ", ")), orDash(reason))
	}
	tw.Flush()
}

// nextProbe says when a paused or open target is probed next.
func nextProbe(t apitypes.Target, now time.Time) string {
	switch {
	case t.State == "" || t.State == "ok":
		return "-"
	case t.NextProbeAt == nil:
		return "unknown"
	case !t.NextProbeAt.After(now):
		return "due now"
	}
	return "in " + t.NextProbeAt.Sub(now).Round(time.Second).String()
}

// waitingLine says why a batch's jobs wait, when its target is paused or
// its circuit open; "" when the target is ok.
func waitingLine(t apitypes.Target, now time.Time) string {
	if t.State == "" || t.State == "ok" {
		return ""
	}
	s := fmt.Sprintf("target %s is %s", t.Name, t.State)
	if t.Since != nil {
		s += fmt.Sprintf(" since %s ago", now.Sub(*t.Since).Round(time.Second))
	}
	if t.Reason != "" {
		s += " (" + printable(shorten(t.Reason, 100)) + ")"
	}
	s += ": deliveries paused, next probe " + nextProbe(t, now) + fmt.Sprintf("; `ferry targets resume %s` probes now", t.Name)
	return s
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
