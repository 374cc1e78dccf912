package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/client"
)

// apiFlags are the flags of the commands that call a ferry server.
type apiFlags struct{ server, key string }

func (f *apiFlags) bind(fs *pflag.FlagSet) {
	fs.StringVar(&f.server, "server", env("FERRY_SERVER", "http://"+listenDefault), "URL of the ferry API [FERRY_SERVER]")
	fs.StringVar(&f.key, "key", "", "API key (default: $FERRY_API_KEY)")
}

// client returns a client of the API the flags name.
func (f *apiFlags) client() (*client.Client, error) {
	return client.New(f.server, cmp.Or(f.key, os.Getenv("FERRY_API_KEY")), nil)
}

func statusCommand() *cobra.Command {
	var api apiFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [BATCH]",
		Short: "Show a batch's progress: counts and bytes by status, throughput, time left (all batches without BATCH)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(args) == 0 {
				return listBatches(cmd, c, asJSON)
			}
			sum, err := c.Batch(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(out, sum)
			}
			printSummary(out, sum)
			if !sum.Done() && sum.Target != "" {
				// Why its jobs wait, when its target is paused or open.
				ts, err := c.Targets(cmd.Context())
				if err != nil {
					return err
				}
				for _, t := range ts {
					if line := waitingLine(t, time.Now()); t.Name == sum.Target && line != "" {
						fmt.Fprintf(out, "waiting  %s\n", line)
					}
				}
			}
			return nil
		},
	}
	api.bind(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")
	return cmd
}

func listBatches(cmd *cobra.Command, c *client.Client, asJSON bool) error {
	out := cmd.OutOrStdout()
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	if !asJSON {
		fmt.Fprintln(tw, "BATCH\tTARGET\tFILES\tSUCCESS\tFAILED\tSUPERSEDED\tPENDING\tUPDATED")
	}
	cursor := ""
	for {
		page, err := c.Batches(cmd.Context(), cursor, 100)
		if err != nil {
			return err
		}
		for _, b := range page.Batches {
			if asJSON {
				if err := printJSON(out, b); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", printable(b.Name), cmp.Or(b.Target, "-"), b.Total.Files,
				b.ByStatus[apitypes.StatusSuccess].Files, b.ByStatus[apitypes.StatusFailed].Files,
				b.ByStatus[apitypes.StatusSuperseded].Files, b.Pending.Files, when(b.UpdatedAt))
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	return tw.Flush()
}

// printSummary shows a batch summary for a person.
func printSummary(w io.Writer, s apitypes.BatchSummary) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "batch\t%s\n", printable(s.Name))
	if s.Target != "" {
		fmt.Fprintf(tw, "target\t%s\n", s.Target)
	}
	if len(s.Params) > 0 {
		fmt.Fprintf(tw, "params\t%s\n", printable(fmt.Sprint(s.Params)))
	}
	fmt.Fprintf(tw, "started\t%s\n", when(s.StartedAt))
	fmt.Fprintf(tw, "updated\t%s\n", when(s.UpdatedAt))
	fmt.Fprintln(tw, "\t")
	fmt.Fprintln(tw, "STATUS\tFILES\tBYTES")
	for _, st := range apitypes.Statuses {
		c := s.ByStatus[st]
		fmt.Fprintf(tw, "%s\t%d\t%s\n", st, c.Files, bytesText(c.Bytes))
	}
	fmt.Fprintf(tw, "total\t%d\t%s\n", s.Total.Files, bytesText(s.Total.Bytes))
	fmt.Fprintln(tw, "\t")
	fmt.Fprintf(tw, "throughput\t%.1f files/s, %s/s (last 5 minutes)\n", s.FilesPerSecond, bytesText(int64(s.BytesPerSecond)))
	switch {
	case s.Done():
		fmt.Fprintf(tw, "done\tevery job is final\n")
	case s.ETASeconds != nil:
		fmt.Fprintf(tw, "time left\t%s (%d jobs pending)\n", time.Duration(*s.ETASeconds*float64(time.Second)).Round(time.Second), s.Pending.Files)
	default:
		fmt.Fprintf(tw, "time left\tunknown: no job finished in the last 5 minutes (%d pending)\n", s.Pending.Files)
	}
	_ = tw.Flush()
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return fmt.Sprintf("%s (%s ago)", t.Local().Format(time.DateTime), time.Since(*t).Round(time.Second))
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// bytesText is n in binary units, as 1.5 MiB.
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
