package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-relay/ferry/internal/fakes/blueworks"
	"github.com/ferry-relay/ferry/internal/fakes/fourd"
	"github.com/ferry-relay/ferry/internal/fakes/sink"
	"github.com/ferry-relay/ferry/internal/fakes/workfront"
	"github.com/ferry-relay/ferry/internal/fakes/workfronthook"
)

// fakeCommand runs the fake target systems, for demos and chaos tests.
func fakeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fake",
		Short: "Run a fake target system on loopback (for demos and tests)",
	}
	var listen, dir string
	var failRate float64
	sinkCmd := &cobra.Command{
		Use:   "sink",
		Short: "An HTTP sink: /flaky/ fails twice per job, /refuse/ always refuses, the rest accepts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir != "" {
				if err := os.MkdirAll(dir, 0o750); err != nil {
					return err
				}
			}
			return serveFake(cmd.Context(), listen, sink.New(sink.Options{Dir: dir, FailRate: failRate}))
		},
	}
	sinkCmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9100", "address to listen on")
	sinkCmd.Flags().StringVar(&dir, "dir", "", "write received files here")
	sinkCmd.Flags().Float64Var(&failRate, "fail-rate", 0, "probability that a request fails with 503")
	cmd.AddCommand(sinkCmd)
	for _, f := range []struct {
		use, short, listen string
		handler            func() http.Handler
	}{
		{"workfront-webhook", "Workfront Document Webhooks provider (API key ferry-demo-key)", "127.0.0.1:9101",
			func() http.Handler { return workfronthook.New(workfronthook.Options{}) }},
		{"workfront", "Workfront REST API v15.0 (ferry@example.com / ferry-password, or apiKey ferry-api-key)", "127.0.0.1:9102",
			func() http.Handler { return workfront.New(workfront.Options{}) }},
		{"4d", "4D REST server (open REST; dataclass Invoices, attribute pdf, keys 1-100)", "127.0.0.1:9103",
			func() http.Handler { return fourd.New(fourd.Options{}) }},
		{"blueworks", "IBM Blueworks Live FileUpload (client ferry / ferry-secret)", "127.0.0.1:9104",
			func() http.Handler { return blueworks.New(blueworks.Options{}) }},
	} {
		var addr string
		c := &cobra.Command{
			Use:   f.use,
			Short: "A fake " + f.short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return serveFake(cmd.Context(), addr, f.handler())
			},
		}
		c.Flags().StringVar(&addr, "listen", f.listen, "address to listen on")
		cmd.AddCommand(c)
	}
	return cmd
}

func serveFake(ctx context.Context, listen string, h http.Handler) error {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", listen)
	if err != nil {
		return err
	}
	slog.Info("fake listening", "addr", "http://"+ln.Addr().String())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
