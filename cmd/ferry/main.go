// Command ferry is a queue-backed upload relay: it accepts files over HTTP,
// keeps them in S3-compatible storage, and delivers each one to a document
// system with retries, recording every attempt in Postgres.
//
// Run "ferry help" for the subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ferry-relay/ferry/internal/termtext"
)

func main() {
	// The first signal cancels ctx: commands stop taking work and finish
	// in-flight work up to their grace period. A second one kills.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // restore default handling: a second signal ends the process
	}()
	if err := rootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ferry:", termtext.CleanText(err.Error()))
		var se *settingsError
		if errors.As(err, &se) {
			os.Exit(2) // a configuration it cannot start with
		}
		os.Exit(1)
	}
}
