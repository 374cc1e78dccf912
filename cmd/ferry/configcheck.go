package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-relay/ferry/internal/tracing"
	"github.com/ferry-relay/ferry/targets"
)

// configCommand groups the commands about ferry's own configuration.
func configCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check ferry's configuration"}
	cmd.AddCommand(configCheckCommand())
	return cmd
}

func configCheckCommand() *cobra.Command {
	var cfg config
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate the settings and the targets file as serve does at start, print what it would run with (secrets hidden); exit 2 when something is wrong",
		Long: "Validate the settings (FERRY_* variables, overridden by flags) and the targets file the way " +
			"serve, api and worker do when they start, without connecting to anything, and print what " +
			"they would run with. Passwords in URLs, the S3 keys and the metrics token are hidden. " +
			"The exit status is 2 when a setting or the targets file is wrong, 0 otherwise.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return checkConfig(cmd.OutOrStdout(), cfg, cmd.Flags())
		},
	}
	cfg.bind(cmd.Flags())
	return cmd
}

// checkConfig prints the settings and the targets, then returns every
// problem found as one *settingsError.
func checkConfig(out io.Writer, cfg config, fs *pflag.FlagSet) error {
	var problems []error
	if err := cfg.validate(); err != nil {
		problems = append(problems, err)
	}
	// What openDB and the TLS listener would refuse at start.
	if _, err := pgxpool.ParseConfig(cfg.DatabaseURL); err != nil {
		problems = append(problems, errors.New("FERRY_DATABASE_URL: not a valid Postgres URL"))
	}
	if cfg.TLSCert != "" && cfg.TLSKey != "" {
		if _, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
			problems = append(problems, fmt.Errorf("FERRY_TLS_CERT/FERRY_TLS_KEY: %w", err))
		}
	}
	fmt.Fprintln(out, "settings:")
	printSettings(out, fs)
	set, err := loadTargets(cfg.TargetsFile)
	if err != nil {
		problems = append(problems, err)
		fmt.Fprintf(out, "\ntargets file %s: not usable\n", cfg.TargetsFile)
	} else {
		fmt.Fprintf(out, "\ntargets file %s: %d target(s)\n", cfg.TargetsFile, len(set))
		printTargetPolicies(out, set)
	}
	if err := tracing.Check(os.Getenv); err != nil {
		problems = append(problems, err)
	}
	if ep := tracing.Endpoint(os.Getenv); ep != "" {
		fmt.Fprintf(out, "\ntracing: on, OTLP/HTTP to %s\n", redactURL(ep))
	} else {
		fmt.Fprintln(out, "\ntracing: off (no OTEL_EXPORTER_OTLP_ENDPOINT)")
	}
	if len(problems) > 0 {
		return &settingsError{errors.Join(problems...)}
	}
	fmt.Fprintln(out, "\nok")
	return nil
}

// envNameRE finds the variable a flag's usage names, as "[FERRY_X]".
var envNameRE = regexp.MustCompile(`\[(FERRY_[A-Z0-9_]+)\]`)

// maskedFlags hold secrets or identifiers of accounts: config check says
// whether they are set, never what they are.
var maskedFlags = map[string]bool{"s3-secret-key": true, "metrics-key": true, "s3-access-key": true}

// urlFlags are URLs whose password or token config check hides.
var urlFlags = map[string]bool{"database-url": true, "nats-url": true}

// printSettings writes one line per setting: its variable, its value in
// effect (secrets hidden) and where the value came from.
func printSettings(out io.Writer, fs *pflag.FlagSet) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fs.VisitAll(func(f *pflag.Flag) {
		m := envNameRE.FindStringSubmatch(f.Usage)
		if m == nil {
			return
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", m[1], shownValue(f), origin(f, m[1]))
	})
	_ = tw.Flush()
}

// shownValue is a flag's value as config check prints it.
func shownValue(f *pflag.Flag) string {
	v := f.Value.String()
	switch {
	case maskedFlags[f.Name] && v != "":
		return "(set, hidden)"
	case urlFlags[f.Name]:
		v = strings.Join(mapStrings(strings.Split(v, ","), redactURL), ",")
	}
	if v == "" {
		return "(empty)"
	}
	return printable(v)
}

func origin(f *pflag.Flag, envName string) string {
	switch {
	case f.Changed:
		return "flag --" + f.Name
	case lookupSet(envName):
		return "environment"
	}
	return "default"
}

// lookupSet reports whether the variable is set to a non-empty value.
func lookupSet(name string) bool {
	var e envSettings
	_, ok := e.lookup(name)
	return ok
}

func mapStrings(in []string, f func(string) string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = f(strings.TrimSpace(s))
	}
	return out
}

// printTargetPolicies writes each target's kind and delivery policy: the
// settings common to every kind. A kind's own settings (URLs, credentials)
// are not printed.
func printTargetPolicies(out io.Writer, set targets.Set) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tKIND\tATTEMPTS\tBACKOFF\tTIMEOUT\tCONCURRENCY\tMAX IN FLIGHT\tRATE\tTENANTS")
	for _, name := range set.Names() {
		t := set[name]
		rate, inFlight, tenants := "-", "-", "all"
		if t.Rate > 0 {
			rate = fmt.Sprintf("%g/s", t.Rate)
		}
		if t.MaxInFlight > 0 {
			inFlight = fmt.Sprint(t.MaxInFlight)
			if t.LimitGroup != "" {
				inFlight += " (" + t.LimitGroup + ")"
			}
		}
		if len(t.Tenants) > 0 {
			tenants = strings.Join(slices.Sorted(slices.Values(t.Tenants)), ",")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s..%s\t%s\t%d\t%s\t%s\t%s\n", printable(t.Name), printable(t.Kind),
			t.MaxAttempts, t.Backoff.Initial, t.Backoff.Max, t.Timeout, t.Concurrency, inFlight, rate, tenants)
	}
	_ = tw.Flush()
}

// settingNames returns every FERRY_* variable the ferry binary reads: the
// serving processes' settings (from their flags' usage), the client
// commands' server and key, and the embedded NATS server's debug switch. The Helm chart's test checks its manifests
// set no other.
func settingNames() []string {
	var cfg config
	fs := pflag.NewFlagSet("settings", pflag.ContinueOnError)
	cfg.bind(fs)
	names := []string{"FERRY_SERVER", "FERRY_API_KEY", "FERRY_NATS_DEBUG"}
	fs.VisitAll(func(f *pflag.Flag) {
		if m := envNameRE.FindStringSubmatch(f.Usage); m != nil {
			names = append(names, m[1])
		}
	})
	slices.Sort(names)
	return slices.Compact(names)
}
