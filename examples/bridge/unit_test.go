package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken"
)

func TestParseConfig(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }

	cfg, err := parseConfig([]string{"--chat", "15551234567"}, getenv, io.Discard)
	if err != nil || cfg.DB != defaultDB || cfg.LogLevel != "info" {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
	env[envDB] = "postgres://env/db"
	if cfg, _ = parseConfig([]string{"--chat", "1"}, getenv, io.Discard); cfg.DB != "postgres://env/db" {
		t.Errorf("the environment must supply the database: %q", cfg.DB)
	}
	if cfg, _ = parseConfig([]string{"--chat", "1", "--db", "postgres://flag/db"}, getenv, io.Discard); cfg.DB != "postgres://flag/db" {
		t.Errorf("the flag must win over the environment: %q", cfg.DB)
	}
	if cfg, _ = parseConfig([]string{"--demo"}, getenv, io.Discard); cfg == nil || cfg.LogLevel != "warn" {
		t.Errorf("the demo needs no chat and logs warnings only: %+v", cfg)
	}
	for _, args := range [][]string{{}, {"--keep-db", "--chat", "1"}, {"--chat", "1", "extra"}, {"--nope"}} {
		if _, err := parseConfig(args, getenv, io.Discard); err == nil {
			t.Errorf("%q must be refused", args)
		}
	}
}

func TestRunUsageErrors(t *testing.T) {
	var errOut bytes.Buffer
	if code := run(nil, strings.NewReader(""), io.Discard, &errOut); code != 2 {
		t.Errorf("no --chat: exit %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), "--chat") {
		t.Errorf("the usage must name --chat:\n%s", errOut.String())
	}
	if code := run([]string{"--demo", "--log-level", "loud"}, strings.NewReader(""), io.Discard, io.Discard); code != 2 {
		t.Errorf("bad log level: exit %d, want 2", code)
	}
}

func TestParseDBAddress(t *testing.T) {
	for in, want := range map[string]dbAddress{
		"postgres://u:p@h/db?sslmode=disable": {"postgres", "postgres://u:p@h/db?sslmode=disable"},
		"postgresql://h/db":                   {"postgres", "postgresql://h/db"},
		"file:bridge.db?_foreign_keys=on":     {"sqlite3", "file:bridge.db?_foreign_keys=on"},
		"bridge.db":                           {"sqlite3", "file:bridge.db?_foreign_keys=on"},
		"file:x.db?_busy_timeout=5000":        {"sqlite3", "file:x.db?_busy_timeout=5000&_foreign_keys=on"},
		"file:x.db?_foreign_keys=off":         {"sqlite3", "file:x.db?_foreign_keys=off"},
	} {
		got, err := parseDBAddress(in)
		if err != nil || got != want {
			t.Errorf("%s: got %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "mysql://h/db"} {
		if _, err := parseDBAddress(bad); err == nil {
			t.Errorf("%q must be refused", bad)
		}
	}
}

func TestParseChat(t *testing.T) {
	for in, want := range map[string]types.JID{
		"+1 (555) 123-4567":            types.NewJID("15551234567", types.DefaultUserServer),
		"15551234567":                  types.NewJID("15551234567", types.DefaultUserServer),
		"15551234567@s.whatsapp.net":   types.NewJID("15551234567", types.DefaultUserServer),
		"15551234567:3@s.whatsapp.net": types.NewJID("15551234567", types.DefaultUserServer),
		"200000000000001@lid":          types.NewJID("200000000000001", types.HiddenUserServer),
		"120363000000000000@g.us":      types.NewJID("120363000000000000", types.GroupServer),
	} {
		got, err := parseChat(in)
		if err != nil || got != want {
			t.Errorf("%q: got %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "alice", "012345678", "12345", "+1 555 CALL NOW"} {
		if got, err := parseChat(bad); err == nil {
			t.Errorf("%q must be refused, got %s", bad, got)
		}
	}
}

// The expiry shown by /status is exactly where the plugin's own validity
// checks flip, for the default timing and an odd one.
func TestExpiryMatchesTiming(t *testing.T) {
	for _, timing := range []tctoken.Timing{
		tctoken.DefaultTiming(),
		{ReceiverDuration: 3600, ReceiverBuckets: 3, SenderDuration: 86400, SenderBuckets: 2},
	} {
		for _, ts := range []int64{1_700_000_000, 1_700_000_000 - 1_700_000_000%604800, 1_795_348_800} {
			exp := receivedExpiry(timing, ts)
			if !timing.ReceivedTokenValid(ts, exp-1) || timing.ReceivedTokenValid(ts, exp) {
				t.Errorf("%+v ts=%d: received expiry %d is not where validity ends", timing, ts, exp)
			}
			exp = issuedExpiry(timing, ts)
			if !timing.IssuedTokenValid(ts, exp-1) || timing.IssuedTokenValid(ts, exp) {
				t.Errorf("%+v ts=%d: issued expiry %d is not where validity ends", timing, ts, exp)
			}
			next := nextIssuance(timing, ts)
			if timing.IssuanceDue(ts, next-1) || !timing.IssuanceDue(ts, next) {
				t.Errorf("%+v ts=%d: next issuance %d is not where it becomes due", timing, ts, next)
			}
		}
	}
}

func TestStatusLinesHideSecrets(t *testing.T) {
	now := time.Unix(1_795_348_800, 0)
	st := chatStatus{
		Chat:         types.NewJID("15551234567", types.DefaultUserServer),
		Paired:       true,
		Now:          now,
		Policy:       tctoken.Policy{Timing: tctoken.DefaultTiming()},
		HasToken:     true,
		TokenHash:    "abcd1234",
		TokenAt:      now,
		TokenExpires: now.Add(25 * 24 * time.Hour),
		TokenValid:   true,
		HasSalt:      true,
		IssuedAt:     now,
		Attach:       tctoken.Decision{Attach: tctoken.AttachTCToken, Token: []byte("SECRET-TOKEN"), Reason: "valid tctoken stored"},
		AttachHash:   "abcd1234",
	}
	text := strings.Join(st.lines(), "\n")
	if strings.Contains(text, "SECRET-TOKEN") {
		t.Fatal("token bytes printed")
	}
	for _, want := range []string{"held, sha256 abcd1234", "valid until", "(in 25d)", "NCT salt:", "yes", "<tctoken> sha256 abcd1234"} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
}

func TestHandleLineCommands(t *testing.T) {
	var out bytes.Buffer
	b := &Bridge{out: &out, chat: types.NewJID("15551234567", types.DefaultUserServer), log: zerolog.Nop()}
	ctx := context.Background()
	if !b.HandleLine(ctx, "/quit") || !b.HandleLine(ctx, "  /quit  ") {
		t.Error("/quit must stop")
	}
	if b.HandleLine(ctx, "") || b.HandleLine(ctx, "/help") || b.HandleLine(ctx, "/nope") {
		t.Error("only /quit stops")
	}
	if !strings.Contains(out.String(), "unknown command /nope") || !strings.Contains(out.String(), "/status") {
		t.Errorf("help and unknown commands:\n%s", out.String())
	}
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		24*24*time.Hour + 12*time.Hour: "24d12h",
		7 * 24 * time.Hour:             "7d",
		3*time.Hour + 5*time.Minute:    "3h5m",
		45 * time.Second:               "45s",
	} {
		if got := human(d); got != want {
			t.Errorf("human(%s) = %q, want %q", d, got, want)
		}
	}
}
