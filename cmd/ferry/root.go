package main

import (
	"fmt"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/audit"
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
		resetCommand(),
		apikeyCommand(),
		fakeCommand(),
		pushCommand(),
		syncCommand(),
		statusCommand(),
		jobsCommand(),
		documentsCommand(),
		reportCommand(),
		targetsCommand(),
		versionCommand(),
		configCommand(),
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
			if err := cfg.checkEnv(); err != nil {
				return err
			}
			if err := migrations.Up(withoutPoolSettings(cfg.DatabaseURL)); err != nil {
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
	cmd := &cobra.Command{Use: "apikey", Short: "Manage API keys (talks to the database directly)"}
	cmd.AddCommand(apikeyCreateCommand(), apikeyListCommand(), apikeyRevokeCommand())
	return cmd
}

// withKeys opens the database and runs fn with the key store and the
// audit trail.
func withKeys(cmd *cobra.Command, cfg config, fn func(*apikeys.Store, *audit.Store) error) error {
	if err := cfg.checkEnv(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	pool, err := openDB(cmd.Context(), cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	return fn(apikeys.NewStore(pool), audit.NewStore(pool))
}

// cliKeyName is who the audit trail says made a change from the CLI.
const cliKeyName = "(cli)"

func apikeyCreateCommand() *cobra.Command {
	var cfg config
	var sp apikeys.Spec
	var role string
	cmd := &cobra.Command{
		Use:   "create --name NAME [--tenant T] [--role R] [--expires 720h]",
		Short: "Create an API key and print it, once, alone on standard output",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := apikeys.ParseRole(role)
			if err != nil {
				return err
			}
			sp.Role = r
			return withKeys(cmd, cfg, func(keys *apikeys.Store, trail *audit.Store) error {
				key, info, err := keys.CreateKey(cmd.Context(), sp)
				if err != nil {
					return err
				}
				if err := trail.Record(cmd.Context(), audit.Entry{KeyName: cliKeyName, Tenant: info.Tenant,
					Action: audit.ActionKeyCreate, Subject: info.Name,
					Detail: map[string]any{"prefix": info.Prefix, "role": info.Role, "expires_at": info.ExpiresAt}}); err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "warning:", err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), key)
				return nil
			})
		},
	}
	cfg.bind(cmd.Flags())
	cmd.Flags().StringVar(&sp.Name, "name", "", "what the key is for, unique among keys in use (required)")
	cmd.Flags().StringVar(&sp.Tenant, "tenant", apikeys.TenantDefault, "the tenant whose jobs the key sees")
	cmd.Flags().StringVar(&role, "role", string(apikeys.RoleDefault), "admin (everything, every tenant), operator (read, upload, retry, cancel, re-queue in its tenant) or uploader (upload and read in its tenant)")
	cmd.Flags().DurationVar(&sp.TTL, "expires", 0, "the key stops working this long from now (e.g. 720h); 0 never")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func apikeyListCommand() *cobra.Command {
	var cfg config
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List API keys: name, prefix, tenant, role, created, last used, expires, revoked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withKeys(cmd, cfg, func(keys *apikeys.Store, _ *audit.Store) error {
				list, err := keys.List(cmd.Context())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tPREFIX\tTENANT\tROLE\tCREATED\tLAST USED\tEXPIRES\tREVOKED")
				for _, k := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", printable(k.Name), k.Prefix, k.Tenant, k.Role,
						stamp(&k.CreatedAt), stamp(k.LastUsedAt), stamp(k.ExpiresAt), stamp(k.RevokedAt))
				}
				return tw.Flush()
			})
		},
	}
	cfg.bind(cmd.Flags())
	return cmd
}

func apikeyRevokeCommand() *cobra.Command {
	var cfg config
	cmd := &cobra.Command{
		Use:   "revoke NAME|PREFIX",
		Short: "Revoke an API key: every ferry process refuses it within seconds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withKeys(cmd, cfg, func(keys *apikeys.Store, trail *audit.Store) error {
				info, err := keys.Revoke(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if err := trail.Record(cmd.Context(), audit.Entry{KeyName: cliKeyName, Tenant: info.Tenant,
					Action: audit.ActionKeyRevoke, Subject: info.Name,
					Detail: map[string]any{"prefix": info.Prefix, "role": info.Role}}); err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "warning:", err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "revoked %s (%s, tenant %s)\n", printable(info.Name), info.Prefix, info.Tenant)
				return nil
			})
		},
	}
	cfg.bind(cmd.Flags())
	return cmd
}

// stamp formats an optional time for a listing.
func stamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}
