package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/ferry-relay/ferry/apikeys"
	"github.com/ferry-relay/ferry/migrations"
)

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "ferry",
		Short:         "ferry relays uploads into document systems, reliably",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		serveCommand("serve", "Run the API and the workers in one process (embeds NATS unless FERRY_NATS_URL is set)", roles{api: true, worker: true}),
		serveCommand("api", "Run only the HTTP API", roles{api: true}),
		serveCommand("worker", "Run only the workers", roles{worker: true}),
		migrateCommand(),
		apikeyCommand(),
		fakeCommand(),
		pushCommand(),
		statusCommand(),
		jobsCommand(),
		reportCommand(),
	)
	return root
}

func migrateCommand() *cobra.Command {
	var cfg config
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply database migrations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := migrations.Up(cfg.DatabaseURL); err != nil {
				return err
			}
			v, _, err := migrations.Version(cfg.DatabaseURL)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "database at schema version %d\n", v)
			return nil
		},
	}
	cfg.bind(cmd.Flags())
	return cmd
}

func apikeyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "apikey", Short: "Manage API keys"}
	var cfg config
	var name string
	create := &cobra.Command{
		Use:   "create --name NAME",
		Short: "Create an API key and print it, once, alone on standard output",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			pool, err := openDB(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			defer pool.Close()
			key, err := apikeys.NewStore(pool).Create(cmd.Context(), name)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), key)
			return nil
		},
	}
	cfg.bind(create.Flags())
	create.Flags().StringVar(&name, "name", "", "what the key is for (required)")
	_ = create.MarkFlagRequired("name")
	cmd.AddCommand(create)
	return cmd
}
