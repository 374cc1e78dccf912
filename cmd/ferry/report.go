package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/termtext"
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
				if _, err := copyForTerminal(cmd.OutOrStdout(), body); err != nil {
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
	cmd.Flags().StringVar(&status, "status", "", "only the jobs in this status ("+statusNames()+")")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file instead of standard output")
	return cmd
}

// copyForTerminal copies r to w; when w is a terminal, line by line with
// control characters escaped, so that a file name in the report cannot
// drive the terminal. Redirected to a file, the report is copied as is.
func copyForTerminal(w io.Writer, r io.Reader) (int64, error) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return io.Copy(w, r)
	}
	br := bufio.NewReader(r)
	var n int64
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			m, werr := io.WriteString(w, termtext.CleanText(line))
			n += int64(m)
			if werr != nil {
				return n, werr
			}
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
