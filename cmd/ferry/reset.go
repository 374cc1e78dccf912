package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-relay/ferry/migrations"
)

// resetCommand drops ferry's tables: every job, batch, API key, session
// and audit entry goes (`make reset`).
func resetCommand() *cobra.Command {
	var cfg config
	var yes bool
	cmd := &cobra.Command{
		Use:   "reset [--yes]",
		Short: "Delete every job, batch, API key and audit entry: drop ferry's tables in the configured database",
		Long: `Drop ferry's tables in the configured database (every migration reverted): every job,
batch, API key, dashboard session and audit entry is gone. The next ferry serve (or ferry
migrate) creates them again, empty. Stop every ferry process first.

It asks for confirmation on a terminal; elsewhere it needs --yes. Files in object storage
and the embedded NATS server's data (.ferry/ under make run) stay: make clean removes those.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.checkEnv(); err != nil {
				return err
			}
			db := withoutPoolSettings(cfg.DatabaseURL)
			if !yes {
				if !isTerminal(os.Stdin) {
					return errors.New("reset drops every ferry table: confirm with --yes (make reset RESET=yes) when not on a terminal")
				}
				ok, err := confirm(cmd.InOrStdin(), cmd.ErrOrStderr(), fmt.Sprintf(
					"Drop every ferry table (jobs, batches, API keys, audit) in %s? Type yes: ", redactedURL(db)))
				if err != nil {
					return err
				}
				if !ok {
					return errors.New("nothing dropped")
				}
			}
			if err := migrations.Down(db); err != nil {
				return fmt.Errorf("reset: %w", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "dropped ferry's tables in %s; the next ferry serve creates them again\n", redactedURL(db))
			return nil
		},
	}
	cfg.bind(cmd.Flags())
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return cmd
}

// confirm asks question on w and reports whether the answer read from r
// is yes.
func confirm(r io.Reader, w io.Writer, question string) (bool, error) {
	fmt.Fprint(w, question)
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && line == "" {
		return false, fmt.Errorf("reading the answer: %w", err)
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "yes" || a == "y", nil
}

// redactedURL is a database URL without its password.
func redactedURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "the configured database"
	}
	return u.Redacted()
}
