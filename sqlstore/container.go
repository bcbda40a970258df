// Package sqlstore keeps tctoken's state in SQL (SQLite or PostgreSQL): the
// trust tokens contacts issued to us, when we last issued ours, the NCT salt
// and the server's AB props. The tables live next to whatsmeow's, in the same
// database, under their own version table (see package upgrades).
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/upgrades"
)

// Container wraps the database that holds the tctoken tables of any number of
// accounts. Use [Container.ForAccount] to get the store of one of them.
type Container struct {
	db  *dbutil.Database
	now func() time.Time
	// whatsmeowShape is which of whatsmeow's token tables the database
	// holds, once known (see whatsmeowTableShape).
	whatsmeowShape atomic.Int32
	// sqliteRows is whether SQLite takes a batch's rows as one JSON
	// parameter (json_each and unhex), once known (see rowsAsJSON).
	sqliteRows atomic.Int32
	// prepared are the token writes' statements, prepared once (see
	// prepared.go).
	prepared preparedStatements
}

// New wraps db, typically the same *dbutil.Database whatsmeow's sqlstore uses.
// Call [Container.Upgrade] before using it.
func New(db *dbutil.Database) *Container {
	return &Container{db: db, now: time.Now}
}

// SetClock replaces the clock that stamps updated_at, for tests. Call it
// before the container is used; nil restores time.Now.
func (c *Container) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	c.now = now
}

// upgraded remembers, per connection pool, that the schema is current, so
// that a multi-account bridge calling Enable once per client on one
// database upgrades once. It is keyed by a weak pointer, so a closed and
// dropped pool does not stay alive for it.
var (
	upgradedMu sync.Mutex
	upgraded   = make(map[weak.Pointer[sql.DB]]*upgradeOnce)
)

// upgradeOnce is one pool's upgrade: the first caller runs it, concurrent
// callers wait for it, and a failure lets the next caller try again.
type upgradeOnce struct {
	mu   sync.Mutex
	done bool
}

// Upgrade creates or upgrades the tctoken tables, once per connection pool
// in this process: later calls on the same pool return at once. No global
// lock is held across the database I/O; callers on the same pool wait for
// the one upgrading it, callers on other pools do not.
func (c *Container) Upgrade(ctx context.Context) error {
	key := weak.Make(c.db.RawDB)
	upgradedMu.Lock()
	once, ok := upgraded[key]
	if !ok {
		for other := range upgraded {
			if other.Value() == nil {
				delete(upgraded, other)
			}
		}
		once = &upgradeOnce{}
		upgraded[key] = once
	}
	upgradedMu.Unlock()
	once.mu.Lock()
	defer once.mu.Unlock()
	if !once.done {
		if err := upgrades.Upgrade(ctx, c.db); err != nil {
			return err
		}
		once.done = true
	}
	// Asked here, outside any transaction (see rowsAsJSON).
	(&Store{c: c, db: c.db}).rowsAsJSON(ctx)
	return nil
}

// ForAccount returns the store of one account. ourJID is our own device JID
// (whatsmeow's Store.ID), device part included, as whatsmeow scopes its own
// tables by it.
func (c *Container) ForAccount(ourJID types.JID) *Store {
	jid := ourJID.String()
	return &Store{c: c, db: c.db, ourJID: jid, ourJIDArg: jid}
}

const (
	deleteAccountTokensQuery    = `DELETE FROM tctoken_tokens WHERE our_jid=$1`
	deleteAccountSaltQuery      = `DELETE FROM tctoken_nct_salt WHERE our_jid=$1`
	deleteAccountPropsQuery     = `DELETE FROM tctoken_ab_props WHERE our_jid=$1`
	deleteAccountPropsMetaQuery = `DELETE FROM tctoken_ab_props_meta WHERE our_jid=$1`
	deleteAccountImportQuery    = `DELETE FROM tctoken_imports WHERE our_jid=$1`
	deleteAccountTimelockQuery  = `DELETE FROM tctoken_timelock WHERE our_jid=$1`
	deleteAccountBackfillQuery  = `DELETE FROM tctoken_salt_backfill WHERE our_jid=$1`
)

// DeleteAccount removes everything stored for one account, for logout. The
// tokens and the salt belong to the session: a new login gets new ones.
func (c *Container) DeleteAccount(ctx context.Context, ourJID types.JID) error {
	account := ourJID.String()
	err := c.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, step := range []struct{ what, query string }{
			{"tokens", deleteAccountTokensQuery},
			{"NCT salt", deleteAccountSaltQuery},
			{"AB props", deleteAccountPropsQuery},
			{"AB props metadata", deleteAccountPropsMetaQuery},
			{"import status", deleteAccountImportQuery},
			{"timelock", deleteAccountTimelockQuery},
			{"salt backfill status", deleteAccountBackfillQuery},
			{"new-chat cap", deleteAccountNewChatCapQuery},
		} {
			if _, err := c.db.Exec(ctx, step.query, account); err != nil {
				return fmt.Errorf("failed to delete %s: %w", step.what, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("tctoken: failed to delete data of account %s: %w", account, err)
	}
	return nil
}

// Store holds the state of one account. Every query it makes is scoped to
// that account.
type Store struct {
	c      *Container
	db     *dbutil.Database
	ourJID string
	// ourJIDArg is ourJID as a query argument, boxed once: a send's cold
	// read would box it again on every query.
	ourJIDArg any
}

func (s *Store) now() int64 {
	return s.c.now().Unix()
}

// contactKey is how a contact is stored: without device part, so that all of
// a contact's devices share one token. It spells the key as whatsmeow's
// JID.String does for a JID without device, but joins the two parts itself:
// a history blob names each contact several times, and String formats
// through fmt every time.
func contactKey(contact types.JID) string {
	if contact.User == "" || contact.Server == "" {
		return contact.ToNonAD().String()
	}
	return contact.User + "@" + contact.Server
}

// secret carries token and salt bytes into queries. dbutil can log query
// arguments (at trace level, or with GlobalSafeQueryLog), and zerolog would
// print a plain []byte in base64; secret prints as a placeholder under fmt,
// JSON and text marshaling instead, while the driver still receives the bytes
// through Value.
type secret []byte

const redacted = "<redacted>"

func (s secret) Value() (driver.Value, error) {
	if s == nil {
		return nil, nil
	}
	return []byte(s), nil
}

func (s secret) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, redacted)
}

func (s secret) String() string {
	return redacted
}

func (s secret) MarshalJSON() ([]byte, error) {
	return []byte(`"` + redacted + `"`), nil
}

func (s secret) MarshalText() ([]byte, error) {
	return []byte(redacted), nil
}

var (
	_ driver.Valuer = secret(nil)
	_ fmt.Formatter = secret(nil)
)
