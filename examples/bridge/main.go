// Command bridge relays lines between the terminal and one WhatsApp chat,
// on whatsmeow with the tctoken plugin enabled, so that first messages and
// replies carry the privacy tokens WhatsApp now requires.
//
//	bridge --chat +15551234567             pair by QR code, then chat
//	bridge --chat … --pair-phone <yours>   pair by code instead
//	bridge --demo                          the scripted story, offline
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main with its inputs and outputs passed in, and the exit status
// returned: 0 on success, 1 on failure, 2 on a usage error.
func run(args []string, in io.Reader, out, errOut io.Writer) int {
	cfg, err := parseConfig(args, os.Getenv, errOut)
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(errOut, err)
		}
		return 2
	}
	log, err := newLogger(errOut, cfg.JSONLogs, cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(errOut, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if cfg.Demo {
		// The only way into the fake server (and its test certificate
		// root): real mode never reaches this branch.
		if _, err = runDemo(ctx, demoConfig{Out: out, Log: log, KeepDB: cfg.KeepDB}); err != nil {
			log.Error().Err(err).Msg("Demo failed")
			return 1
		}
		return 0
	}
	if err = runReal(ctx, cfg, in, out, log); err != nil {
		log.Error().Err(err).Msg("Bridge stopped")
		return 1
	}
	return 0
}
