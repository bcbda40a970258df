package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	_ "github.com/lib/pq"
	_ "github.com/mattn/go-sqlite3"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/hooks"
	"github.com/tctoken/tctoken/sqlstore"
	"github.com/tctoken/tctoken/upgrades"
)

const usage = `usage: tctoken-inspect [--json] [--jid JID] [--account JID] [--now UNIX] DATABASE

DATABASE is a SQLite file path (or file: URI) or a postgres:// URI. It is
opened read-only. JID is a phone number (+15551234567), a PN JID or a LID.`

// options are the command line.
type options struct {
	json    bool
	jid     string
	account string
	now     int64
	db      string
}

func parseArgs(args []string, errOut io.Writer) (options, error) {
	var opts options
	fs := flag.NewFlagSet("tctoken-inspect", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() { fmt.Fprintln(errOut, usage) }
	fs.BoolVar(&opts.json, "json", false, "print JSON")
	fs.StringVar(&opts.jid, "jid", "", "explain one contact")
	fs.StringVar(&opts.account, "account", "", "only this account (our device JID)")
	fs.Int64Var(&opts.now, "now", 0, "judge expiry at this unix time instead of now")
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return opts, errors.New("tctoken-inspect: exactly one database is needed")
	}
	opts.db = fs.Arg(0)
	return opts, nil
}

// run is main with its outputs passed in: 0 on success, 1 on failure, 2 on
// a usage error.
func run(ctx context.Context, args []string, out, errOut io.Writer) int {
	opts, err := parseArgs(args, errOut)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(errOut, err)
		}
		return 2
	}
	db, err := openReadOnly(opts.db)
	if err != nil {
		fmt.Fprintln(errOut, err)
		return 1
	}
	defer db.Close()
	now := time.Now()
	if opts.now > 0 {
		now = time.Unix(opts.now, 0)
	}
	if err = inspect(ctx, db, opts, now, out); err != nil {
		fmt.Fprintln(errOut, err)
		return 1
	}
	return 0
}

// openReadOnly opens the database so that nothing can be written: SQLite
// in mode=ro, PostgreSQL with read-only transactions by default on one
// connection, checked before use.
func openReadOnly(address string) (*dbutil.Database, error) {
	driver, dsn := "sqlite3", address
	if strings.HasPrefix(address, "postgres://") || strings.HasPrefix(address, "postgresql://") {
		driver = "postgres"
		u, err := url.Parse(address)
		if err != nil {
			return nil, fmt.Errorf("tctoken-inspect: parse the PostgreSQL URI: %w", err)
		}
		q := u.Query()
		// lib/pq sends unknown parameters as run-time settings.
		q.Set("default_transaction_read_only", "on")
		u.RawQuery = q.Encode()
		dsn = u.String()
	} else {
		path, query, _ := strings.Cut(strings.TrimPrefix(address, "file:"), "?")
		q, err := url.ParseQuery(query)
		if err != nil {
			return nil, fmt.Errorf("tctoken-inspect: parse the SQLite URI: %w", err)
		}
		q.Set("mode", "ro")
		q.Set("_query_only", "true")
		dsn = "file:" + path + "?" + q.Encode()
	}
	raw, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("tctoken-inspect: open %s: %w", driver, err)
	}
	raw.SetMaxOpenConns(1)
	db, err := dbutil.NewWithDB(raw, driver)
	if err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("tctoken-inspect: wrap the database: %w", err)
	}
	if driver == "postgres" {
		var readOnly string
		if err = raw.QueryRow("SHOW transaction_read_only").Scan(&readOnly); err != nil || readOnly != "on" {
			_ = raw.Close()
			return nil, fmt.Errorf("tctoken-inspect: could not make the PostgreSQL session read-only (%q): %w", readOnly, err)
		}
	}
	return db, nil
}

// checkSchema refuses a database the plugin never upgraded, or upgraded
// with an older version than this inspector reads.
func checkSchema(ctx context.Context, db *dbutil.Database) error {
	exists, err := sqlstore.TableVisible(ctx, db, upgrades.VersionTable)
	if err != nil {
		return fmt.Errorf("tctoken-inspect: check the tctoken schema: %w", err)
	} else if !exists {
		return errors.New("tctoken-inspect: no tctoken tables in this database (was the plugin ever enabled on it?)")
	}
	var version int
	if err = db.QueryRow(ctx, `SELECT version FROM `+upgrades.VersionTable).Scan(&version); err != nil {
		return fmt.Errorf("tctoken-inspect: read the tctoken schema version: %w", err)
	}
	if version < upgrades.Latest() {
		return fmt.Errorf("tctoken-inspect: the tctoken schema is v%d, this inspector reads v%d: run the bridge with this plugin version once", version, upgrades.Latest())
	}
	return nil
}

// Report is the inspector's JSON.
type Report struct {
	Accounts []AccountReport `json:"accounts"`
}

// AccountReport is what one account holds.
type AccountReport struct {
	Account  string                `json:"account"`
	Salt     SaltReport            `json:"salt"`
	Props    *PropsReport          `json:"props"`
	Policy   tctoken.Policy        `json:"policy"`
	Import   ImportReport          `json:"import"`
	Timelock tctoken.TimelockState `json:"timelock"`
	// NewChatCap is the new-chat cap as the bridge last received it.
	NewChatCap tctoken.NewChatCapState `json:"new_chat_cap"`
	Contacts   []ContactReport         `json:"contacts"`
	// Explained is set with --jid.
	Explained *tctoken.Explanation `json:"explained,omitempty"`
}

// SaltReport never holds the salt's bytes.
type SaltReport struct {
	Present  bool                   `json:"present"`
	Removed  bool                   `json:"removed,omitempty"`
	Source   string                 `json:"source,omitempty"`
	Hash     string                 `json:"hash,omitempty"`
	Updated  time.Time              `json:"updated,omitzero"`
	Backfill *sqlstore.SaltBackfill `json:"backfill,omitempty"`
}

// PropsReport is the AB props in force.
type PropsReport struct {
	Fetched time.Time      `json:"fetched"`
	Hash    string         `json:"hash"`
	Refresh int64          `json:"refresh_seconds"`
	Values  map[int]string `json:"values"`
}

// ImportReport is the import of whatsmeow's own tokens.
type ImportReport struct {
	Done bool      `json:"done"`
	At   time.Time `json:"at,omitzero"`
	Rows int64     `json:"rows"`
}

// ContactReport is one row, without token bytes.
type ContactReport struct {
	Contact         string    `json:"contact"`
	Token           string    `json:"token,omitempty"`
	TokenTimestamp  time.Time `json:"token_timestamp,omitzero"`
	TokenExpires    time.Time `json:"token_expires,omitzero"`
	TokenValid      bool      `json:"token_valid"`
	SenderTimestamp time.Time `json:"sender_timestamp,omitzero"`
	IssuanceDue     bool      `json:"issuance_due"`
}

func inspect(ctx context.Context, db *dbutil.Database, opts options, now time.Time, out io.Writer) error {
	if err := checkSchema(ctx, db); err != nil {
		return err
	}
	container := sqlstore.New(db)
	accounts, err := container.Accounts(ctx)
	if err != nil {
		return fmt.Errorf("tctoken-inspect: %w", err)
	}
	var contact types.JID
	if opts.jid != "" {
		if contact, err = parseContact(opts.jid); err != nil {
			return err
		}
	}
	var report Report
	for _, account := range accounts {
		if opts.account != "" && account.String() != opts.account {
			continue
		}
		acc, err := inspectAccount(ctx, container, account, now)
		if err != nil {
			return err
		}
		if !contact.IsEmpty() {
			explained, err := hooks.ExplainStored(ctx, container, account, contact, tctoken.DefaultDefaults(), now)
			if err != nil {
				return fmt.Errorf("tctoken-inspect: %w", err)
			}
			acc.Explained = &explained
		}
		report.Accounts = append(report.Accounts, acc)
	}
	if opts.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	return writeText(out, report, !contact.IsEmpty())
}

// parseContact takes +15551234567, 15551234567, a PN JID or a LID.
func parseContact(s string) (types.JID, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "@") {
		digits := strings.TrimPrefix(s, "+")
		if digits == "" || strings.Trim(digits, "0123456789") != "" {
			return types.EmptyJID, fmt.Errorf("tctoken-inspect: %q is neither a phone number nor a JID", s)
		}
		return types.NewJID(digits, types.DefaultUserServer), nil
	}
	jid, err := types.ParseJID(s)
	if err != nil {
		return types.EmptyJID, fmt.Errorf("tctoken-inspect: parse JID %q: %w", s, err)
	}
	return jid.ToNonAD(), nil
}

func inspectAccount(ctx context.Context, container *sqlstore.Container, account types.JID, now time.Time) (AccountReport, error) {
	st := container.ForAccount(account)
	rep := AccountReport{Account: account.String(), Contacts: []ContactReport{}}
	fail := func(step string, err error) (AccountReport, error) {
		return rep, fmt.Errorf("tctoken-inspect: account %s: %s: %w", account, step, err)
	}
	salt, source, found, err := st.GetSalt(ctx)
	if err != nil {
		return fail("read the salt", err)
	}
	rep.Salt = SaltReport{Present: len(salt) > 0, Removed: found && len(salt) == 0, Source: string(source)}
	if len(salt) > 0 {
		rep.Salt.Hash = tctoken.ShortHash(salt)
	}
	if updated, err := st.SaltUpdatedAt(ctx); err != nil {
		return fail("read the salt's age", err)
	} else if updated > 0 {
		rep.Salt.Updated = time.Unix(updated, 0)
	}
	if rep.Salt.Backfill, err = st.GetSaltBackfill(ctx); err != nil {
		return fail("read the salt backfill", err)
	}
	props, err := st.GetProps(ctx)
	if err != nil {
		return fail("read the AB props", err)
	}
	var values map[int]string
	if props != nil {
		values = props.Values
		rep.Props = &PropsReport{Fetched: time.Unix(props.FetchedAt, 0), Hash: props.Hash, Refresh: props.Refresh, Values: props.Values}
	}
	rep.Policy = hooks.ComputePolicy(tctoken.DefaultDefaults(), values, nil)
	at, rows, done, err := st.ImportStatus(ctx)
	if err != nil {
		return fail("read the import status", err)
	}
	rep.Import = ImportReport{Done: done, Rows: rows}
	if done {
		rep.Import.At = time.Unix(at, 0)
	}
	timelock, err := st.GetTimelock(ctx)
	if err != nil {
		return fail("read the timelock", err)
	}
	rep.Timelock = hooks.TimelockFromStored(timelock)
	newChatCap, err := st.GetNewChatCap(ctx)
	if err != nil {
		return fail("read the new-chat cap", err)
	}
	rep.NewChatCap = hooks.NewChatCapFromStored(newChatCap)
	entries, err := st.Entries(ctx)
	if err != nil {
		return fail("list the contacts", err)
	}
	timing := rep.Policy.Timing
	for _, e := range entries {
		c := ContactReport{Contact: e.Contact.String(), IssuanceDue: timing.IssuanceDue(e.SenderTS, now.Unix())}
		if len(e.Token) > 0 {
			c.Token = tctoken.ShortHash(e.Token)
			c.TokenTimestamp = time.Unix(e.TokenTS, 0)
			c.TokenExpires = time.Unix(timing.TokenExpiry(e.TokenTS), 0)
			c.TokenValid = timing.ReceivedTokenValid(e.TokenTS, now.Unix())
		}
		if e.SenderTS > 0 {
			c.SenderTimestamp = time.Unix(e.SenderTS, 0)
		}
		rep.Contacts = append(rep.Contacts, c)
	}
	return rep, nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func describeTimelock(tl tctoken.TimelockState) string {
	switch {
	case tl.Source == "":
		return "none seen"
	case !tl.Active:
		return fmt.Sprintf("not active (last word from %s at %s)", tl.Source, stamp(tl.Updated))
	case tl.Ends.IsZero():
		return fmt.Sprintf("ACTIVE (from %s since %s, end unknown)", tl.Source, stamp(tl.Updated))
	}
	return fmt.Sprintf("ACTIVE (from %s since %s, ends %s)", tl.Source, stamp(tl.Updated), stamp(tl.Ends))
}

func describeNewChatCap(nc tctoken.NewChatCapState, policy tctoken.NewChatCapPolicy) string {
	if !nc.Known() {
		return fmt.Sprintf("never fetched (AB props: %s)", onOff(policy.Enabled))
	}
	var b strings.Builder
	b.WriteString(string(nc.Status))
	switch {
	case nc.UsedKnown && nc.LimitKnown:
		fmt.Fprintf(&b, ", %d of %d new chats used", nc.Used, nc.Limit)
	case nc.LimitKnown:
		fmt.Fprintf(&b, ", limit %d", nc.Limit)
	}
	if !nc.CycleEnd.IsZero() {
		fmt.Fprintf(&b, ", cycle ends %s", stamp(nc.CycleEnd))
	}
	fmt.Fprintf(&b, " (from %s at %s, AB props: %s)", nc.Source, stamp(nc.Fetched), onOff(policy.Enabled))
	return b.String()
}

func writeText(out io.Writer, report Report, explain bool) error {
	if len(report.Accounts) == 0 {
		_, err := fmt.Fprintln(out, "no accounts")
		return err
	}
	var b strings.Builder
	for i, acc := range report.Accounts {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "account %s\n", acc.Account)
		switch {
		case acc.Salt.Present:
			fmt.Fprintf(&b, "  salt:     present (source %s, hash %s, updated %s)\n", acc.Salt.Source, acc.Salt.Hash, stamp(acc.Salt.Updated))
		case acc.Salt.Removed:
			fmt.Fprintf(&b, "  salt:     absent (removed by app state at %s)\n", stamp(acc.Salt.Updated))
		default:
			fmt.Fprintf(&b, "  salt:     absent\n")
		}
		if bf := acc.Salt.Backfill; bf != nil {
			fmt.Fprintf(&b, "  backfill: last attempt %s, result %s, %d attempt(s)\n", stamp(time.Unix(bf.AttemptedAt, 0)), bf.Result, bf.Attempts)
		}
		if acc.Props == nil {
			fmt.Fprintf(&b, "  props:    never fetched (defaults apply)\n")
		} else {
			fmt.Fprintf(&b, "  props:    fetched %s, hash %q, refresh %ds, %d value(s)\n", stamp(acc.Props.Fetched), acc.Props.Hash, acc.Props.Refresh, len(acc.Props.Values))
			for _, code := range slices.Sorted(maps.Keys(acc.Props.Values)) {
				fmt.Fprintf(&b, "            %d = %s\n", code, acc.Props.Values[code])
			}
		}
		p := acc.Policy
		fmt.Fprintf(&b, "  policy:   receiver %d x %ds, sender %d x %ds, tctoken %s, cstoken %s, issue to LID %s\n",
			p.Timing.ReceiverBuckets, p.Timing.ReceiverDuration, p.Timing.SenderBuckets, p.Timing.SenderDuration,
			onOff(p.AttachTCToken), onOff(p.AttachCSToken), onOff(p.IssueToLID))
		if acc.Import.Done {
			fmt.Fprintf(&b, "  import:   done %s (%d row(s) of whatsmeow's)\n", stamp(acc.Import.At), acc.Import.Rows)
		} else {
			fmt.Fprintf(&b, "  import:   not yet\n")
		}
		fmt.Fprintf(&b, "  timelock: %s\n", describeTimelock(acc.Timelock))
		fmt.Fprintf(&b, "  new-chat cap: %s\n", describeNewChatCap(acc.NewChatCap, acc.Policy.NewChatCap))
		if explain && acc.Explained != nil {
			writeExplanation(&b, acc.Explained)
			continue
		}
		fmt.Fprintf(&b, "  contacts: %d\n", len(acc.Contacts))
		if len(acc.Contacts) > 0 {
			tw := tabwriter.NewWriter(&b, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "    CONTACT\tTOKEN\tTOKEN_TS\tEXPIRES\tVALID\tSENDER_TS\tISSUE_DUE")
			for _, c := range acc.Contacts {
				token := c.Token
				if token == "" {
					token = "-"
				}
				valid := "-"
				if c.Token != "" {
					valid = yesNo(c.TokenValid)
				}
				fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Contact, token, stamp(c.TokenTimestamp), stamp(c.TokenExpires),
					valid, stamp(c.SenderTimestamp), yesNo(c.IssuanceDue))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}
	_, err := io.WriteString(out, b.String())
	return err
}

func writeExplanation(b *strings.Builder, e *tctoken.Explanation) {
	fmt.Fprintf(b, "  contact:  %s (stored under %s)\n", e.Contact, e.Key)
	lid := "unknown"
	if e.LIDKnown {
		lid = e.LID
	}
	fmt.Fprintf(b, "    LID:            %s\n", lid)
	if e.PN != "" {
		fmt.Fprintf(b, "    PN:             %s\n", e.PN)
	}
	if e.Token == "" {
		fmt.Fprintf(b, "    token:          none\n")
	} else {
		fmt.Fprintf(b, "    token:          %s, issued %s, expires %s, valid %s\n", e.Token, stamp(e.TokenTimestamp), stamp(e.TokenExpires), yesNo(e.TokenValid))
	}
	fmt.Fprintf(b, "    our issuance:   %s, due %s\n", stamp(e.SenderTimestamp), yesNo(e.IssuanceDue))
	fmt.Fprintf(b, "    salt:           %s\n", map[bool]string{true: "present (" + e.SaltSource + ")", false: "absent"}[e.SaltPresent])
	fmt.Fprintf(b, "    next message:   %s (%s: %s)\n", e.Attach, e.Cause, e.Reason)
	fmt.Fprintf(b, "    if refused 463: %s: %s\n", e.IfRefused, e.Hint)
}
