package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// envDB names the variable that can hold the database address, so that a
// PostgreSQL password need not appear in the process list.
const envDB = "TCTOKEN_BRIDGE_DB"

// defaultDB is a SQLite file in the working directory. whatsmeow needs
// foreign keys on, and go-sqlite3 leaves them off unless asked.
const defaultDB = "file:bridge.db?_foreign_keys=on"

// config is everything the command line says.
type config struct {
	DB        string // database address, as whatsmeow's sqlstore takes it
	Chat      string // --chat as typed: a JID or a phone number
	PairPhone string // pair by code with this phone number instead of a QR
	Demo      bool
	KeepDB    bool
	JSONLogs  bool
	LogLevel  string
}

// errUsage means the flags were wrong; the flag package already said why.
var errUsage = errors.New("usage error")

// parseConfig reads the flags in args (without the program name). getenv is
// os.Getenv outside tests.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("bridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.DB, "db", "", "database `address`: postgres://… or file:….db (default $"+envDB+", else "+defaultDB+")")
	fs.StringVar(&cfg.Chat, "chat", "", "the chat to bridge: a `JID` (…@s.whatsapp.net, …@lid) or a phone number in international format")
	fs.StringVar(&cfg.PairPhone, "pair-phone", "", "pair with a code entered on the phone with this `number`, instead of scanning a QR code")
	fs.BoolVar(&cfg.Demo, "demo", false, "run the scripted demo against an in-process fake WhatsApp server (no phone, no network)")
	fs.BoolVar(&cfg.KeepDB, "keep-db", false, "with --demo: keep the demo database and print its path")
	fs.BoolVar(&cfg.JSONLogs, "json-logs", false, "log JSON lines instead of human-readable text")
	fs.StringVar(&cfg.LogLevel, "log-level", "", "`level` of the logs on stderr: debug, info, warn, error (default info, warn with --demo)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: bridge --chat <jid or phone> [flags]\n       bridge --demo [--keep-db]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return nil, errUsage
	}
	if cfg.DB == "" {
		cfg.DB = getenv(envDB)
	}
	if cfg.DB == "" {
		cfg.DB = defaultDB
	}
	if cfg.LogLevel == "" {
		// The demo's story is on stdout; routine logs would drown it.
		cfg.LogLevel = "info"
		if cfg.Demo {
			cfg.LogLevel = "warn"
		}
	}
	if !cfg.Demo {
		if cfg.KeepDB {
			return nil, fmt.Errorf("--keep-db only applies to --demo")
		}
		if cfg.Chat == "" {
			fmt.Fprintln(stderr, "missing --chat: which chat should the bridge relay?")
			fs.Usage()
			return nil, errUsage
		}
	}
	return cfg, nil
}
