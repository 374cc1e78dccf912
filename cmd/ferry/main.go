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

	"github.com/ferry-relay/ferry/client"
	"github.com/ferry-relay/ferry/internal/termtext"
)

// errorText is what the CLI says of err: with a hint of what to do when
// no server answers.
func errorText(err error) string {
	var ue *client.UnreachableError
	if errors.As(err, &ue) {
		return fmt.Sprintf("%v\n  is the server running? start one with `make run` (from a clone of ferry) or `ferry serve`,\n  or point --server (or FERRY_SERVER) at a running one", err)
	}
	return err.Error()
}

func main() {
	// The first signal cancels ctx: commands stop taking work and finish
	// in-flight work up to their grace period. A second one kills.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // restore default handling: a second signal ends the process
	}()
	if err := rootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ferry:", termtext.CleanText(errorText(err)))
		var xe *exitError
		if errors.As(err, &xe) {
			os.Exit(xe.code) // a command's own exit status (ferry sync)
		}
		var se *settingsError
		if errors.As(err, &se) {
			os.Exit(2) // a configuration it cannot start with
		}
		os.Exit(1)
	}
}
