package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/client"
)

// documentsCommand lists, shows and deletes documents over the API.
func documentsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "documents",
		Short: "List, show and delete documents (files with a key at a target, in versions) over the API",
	}
	cmd.AddCommand(documentsListCommand(), documentsShowCommand(), documentsDeleteCommand())
	return cmd
}

func documentsListCommand() *cobra.Command {
	var api apiFlags
	var f client.DocumentFilter
	var all, asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List documents, by key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			if !asJSON {
				fmt.Fprintln(tw, "ID\tTARGET\tSTATE\tVERSIONS\tCURRENT\tSIZE\tUPDATED\tKEY")
			}
			more, err := listDocuments(cmd.Context(), c, f, all, func(d apitypes.Document) error {
				if asJSON {
					return printJSON(out, d)
				}
				current, size := "-", "-"
				if v := d.Current; v != nil {
					current, size = fmt.Sprintf("v%d %s", v.Version, shortSHA(v.SHA256)), bytesText(v.Size)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", d.ID, d.Target, d.State, d.Versions, current, size,
					stamp(&d.UpdatedAt), printable(d.Key))
				return nil
			})
			if err != nil {
				return err
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if more != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "more documents match than the %d listed: --all lists every one, --cursor %s the next page\n", f.Limit, more)
			}
			return nil
		},
	}
	api.bind(cmd.Flags())
	cmd.Flags().StringVar(&f.Target, "target", "", "only documents at this target")
	cmd.Flags().StringVar(&f.Batch, "batch", "", "only documents with a version uploaded in this batch")
	cmd.Flags().StringVar(&f.KeyPrefix, "prefix", "", "only documents whose key starts with this")
	cmd.Flags().StringVar(&f.State, "state", "", "only documents in this state (active, deleted)")
	cmd.Flags().IntVar(&f.Limit, "limit", 100, "documents per page")
	cmd.Flags().BoolVar(&all, "all", false, "page through every matching document")
	cmd.Flags().StringVar(&f.Cursor, "cursor", "", "start at this page (the cursor a listing with more pages prints)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each document as JSON")
	return cmd
}

// listDocuments calls fn with the documents of one page of f, or of every
// page with all, and returns the next page's cursor when pages were left.
func listDocuments(ctx context.Context, c *client.Client, f client.DocumentFilter, all bool, fn func(apitypes.Document) error) (string, error) {
	if f.State != "" && f.State != apitypes.DocumentActive && f.State != apitypes.DocumentDeleted {
		return "", fmt.Errorf("--state %q: want %s or %s", f.State, apitypes.DocumentActive, apitypes.DocumentDeleted)
	}
	if all {
		return "", c.EachDocument(ctx, f, fn)
	}
	page, err := c.Documents(ctx, f)
	if err != nil {
		return "", err
	}
	for _, d := range page.Documents {
		if err := fn(d); err != nil {
			return "", err
		}
	}
	return page.NextCursor, nil
}

// documentRef is how a command names one document: by id, or by its
// target and key.
type documentRef struct{ target, key string }

func (r *documentRef) bind(cmd *cobra.Command, verb string) {
	// --key is the API key's flag, as in every command that calls the API.
	cmd.Flags().StringVar(&r.target, "target", "", "the document's target (with --doc-key), to "+verb+" it without its id")
	cmd.Flags().StringVar(&r.key, "doc-key", "", "the document's key (with --target)")
}

// check says whether args and the flags name one document, one way.
func (r documentRef) check(args []string) error {
	switch {
	case len(args) == 1 && (r.target != "" || r.key != ""):
		return errors.New("give a document id or --target and --doc-key, not both")
	case len(args) == 0 && (r.target == "" || r.key == ""):
		return errors.New("name a document: its id, or --target and --doc-key")
	}
	return nil
}

// find returns the document r names (by key: the first of its key's
// prefix, which is the key itself, keys being listed in order).
func (r documentRef) find(ctx context.Context, c *client.Client, args []string) (apitypes.Document, error) {
	if len(args) == 1 {
		return c.Document(ctx, args[0])
	}
	page, err := c.Documents(ctx, client.DocumentFilter{Target: r.target, KeyPrefix: r.key, Limit: 1})
	if err != nil {
		return apitypes.Document{}, err
	}
	if len(page.Documents) == 0 || page.Documents[0].Key != r.key {
		return apitypes.Document{}, fmt.Errorf("no document %q at target %s", r.key, r.target)
	}
	return c.Document(ctx, page.Documents[0].ID)
}

func documentsShowCommand() *cobra.Command {
	var api apiFlags
	var ref documentRef
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID | --target T --doc-key K",
		Short: "Show a document and its versions, oldest first: status, SHA-256, size, accepted, delivered",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := ref.check(args); err != nil {
				return err
			}
			c, err := api.client()
			if err != nil {
				return err
			}
			d, err := ref.find(cmd.Context(), c, args)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), d)
			}
			return printDocument(cmd.OutOrStdout(), d)
		},
	}
	api.bind(cmd.Flags())
	ref.bind(cmd, "show")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")
	return cmd
}

// printDocument shows a document and its version timeline for a person.
func printDocument(w io.Writer, d apitypes.Document) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "document\t%s\n", d.ID)
	fmt.Fprintf(tw, "key\t%s\n", printable(d.Key))
	fmt.Fprintf(tw, "target\t%s\n", d.Target)
	fmt.Fprintf(tw, "state\t%s\n", d.State)
	if v := d.Current; v != nil {
		fmt.Fprintf(tw, "current\tversion %d, %s, sha256 %s (job %s)\n", v.Version, bytesText(v.Size), v.SHA256, v.Job)
	} else {
		fmt.Fprintf(tw, "current\tnone delivered yet\n")
	}
	for _, k := range slices.Sorted(maps.Keys(d.Remote)) {
		fmt.Fprintf(tw, "remote %s\t%s\n", printable(k), printable(d.Remote[k]))
	}
	fmt.Fprintf(tw, "created\t%s\n", stamp(&d.CreatedAt))
	fmt.Fprintf(tw, "updated\t%s\n", stamp(&d.UpdatedAt))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d versions:\n", cmp.Or(d.Versions, len(d.History)))
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tOP\tSTATUS\tSHA256\tSIZE\tACCEPTED\tDELIVERED\tREMOTE VERSION\tJOB")
	for _, v := range d.History {
		sha, size := shortSHA(v.SHA256), bytesText(v.Size)
		if v.Op == "delete" {
			sha, size = "-", "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Version, cmp.Or(v.Op, "put"), v.Status, sha, size,
			stampSeconds(&v.AcceptedAt), stampSeconds(v.DeliveredAt), printable(cmp.Or(v.RemoteVersion, "-")), v.Job)
	}
	return tw.Flush()
}

func documentsDeleteCommand() *cobra.Command {
	var api apiFlags
	var ref documentRef
	cmd := &cobra.Command{
		Use:   "delete ID | --target T --doc-key K",
		Short: "Delete a document at its target: a delete job, delivered after its versions (those not started are SUPERSEDED)",
		Long: `Record the deletion of a document: a delete job, delivered after the document's
versions; versions not started yet become SUPERSEDED. Targets whose system has no delete
(4d, workfront-webhook, blueworks) refuse it (delete_unsupported). Operators and admins only.

  ferry documents delete 0190a7d2-...
  ferry documents delete --target archive --doc-key reports/2026/q3.pdf`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := ref.check(args); err != nil {
				return err
			}
			c, err := api.client()
			if err != nil {
				return err
			}
			var job apitypes.Job
			if len(args) == 1 {
				job, err = c.DeleteDocumentByID(cmd.Context(), args[0])
			} else {
				job, err = c.DeleteDocument(cmd.Context(), ref.target, ref.key)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "delete of document %q at %s recorded: job %s, version %d (%s)\n",
				printable(cmp.Or(job.DocumentKey, ref.key)), cmp.Or(job.Target, ref.target), job.ID, job.Version, job.Status)
			return nil
		},
	}
	api.bind(cmd.Flags())
	ref.bind(cmd, "delete")
	return cmd
}

// stampSeconds formats an optional time to the second: versions follow
// each other closely.
func stampSeconds(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// shortSHA is the first 12 hex digits of a SHA-256, "-" for none.
func shortSHA(s string) string {
	if s == "" {
		return "-"
	}
	return s[:min(len(s), 12)]
}
