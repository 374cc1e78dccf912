package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/ferry-relay/ferry/apitypes"
)

func reportCommand() *cobra.Command {
	var api apiFlags
	var format, status, output string
	cmd := &cobra.Command{
		Use:   "report BATCH",
		Short: "Print a batch's report: one row per file with its job, status, attempts, remote id, sha256 and last error",
		Long: `Print a batch's report, streamed from the server: one row per file with its path,
job id, status, attempts, remote id, sha256, size, last error and end time.

  ferry report BATCH > report.csv
  ferry report BATCH --status FAILED --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			if status != "" && !apitypes.Status(status).Valid() {
				return fmt.Errorf("unknown status %q", status)
			}
			body, err := c.Report(cmd.Context(), args[0], format, apitypes.Status(status))
			if err != nil {
				return err
			}
			defer body.Close()
			if output == "" || output == "-" {
				if _, err := io.Copy(cmd.OutOrStdout(), body); err != nil {
					return fmt.Errorf("report of batch %q broke off: %w", args[0], err)
				}
				return nil
			}
			f, err := os.Create(output)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, body); err != nil {
				f.Close()
				return fmt.Errorf("report of batch %q broke off: %w", args[0], err)
			}
			return f.Close()
		},
	}
	api.bind(cmd.Flags())
	cmd.Flags().StringVar(&format, "format", "csv", "csv or json")
	cmd.Flags().StringVar(&status, "status", "", "only the jobs in this status (FAILED, SUCCESS, ...)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file instead of standard output")
	return cmd
}
