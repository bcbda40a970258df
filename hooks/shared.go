package hooks

import (
	"bytes"
	"context"
	"errors"
	"time"

	wsqlstore "go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/sqlstore"
)

// Sharing whatsmeow's database. When whatsmeow's token store runs on the
// plugin's database and joins its transactions (a mautrix bridge hands
// whatsmeow a child of its own database; so do most bots), the plugin
//
//   - commits each write and its write-through to whatsmeow's table together:
//     one commit instead of two, and whatsmeow's table never lags behind;
//   - reads a contact cold by LID in one statement that follows whatsmeow's
//     LID map, instead of asking the map first, which also keeps the read
//     out of whatsmeow's never-evicting LID cache.
//
// Whether it does is asked once per account and per whatsmeow store (see
// sqlstore.SharesTransactions); until the answer is in, and whenever it is
// no, the plugin writes the two apart, as it would for a store elsewhere.

// joinProbe is the answer for one of whatsmeow's token stores, named by its
// box in Core.inner: pairing replaces the store, and the answer with it.
type joinProbe struct {
	inner *innerTokens
	joins bool
	// retryAt is set when the probe failed rather than answered (the
	// database busy, say): the next write after it asks again.
	retryAt time.Time
}

// probeTimeout bounds one probe: it must never hold a write for long.
const probeTimeout = 3 * time.Second

// probeRetry is how long a failed probe's "no" stands.
const probeRetry = time.Minute

// probeJoin asks whether whatsmeow's current token store joins the plugin's
// transactions, and records the answer. A probe that fails (no device row
// yet, whatsmeow's table elsewhere) answers no.
func (c *Core) probeJoin(ctx context.Context, acc *accountState) bool {
	box := c.inner.Load()
	if box == nil || box.PrivacyTokenStore == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	joins, err := acc.store.SharesTransactions(ctx, func(ctx context.Context, contact types.JID) ([]byte, error) {
		token, err := box.GetPrivacyToken(ctx, contact)
		if token == nil {
			return nil, err
		}
		return token.Token, err
	})
	probe := &joinProbe{inner: box, joins: joins}
	if errors.Is(err, sqlstore.ErrProbeInTransaction) {
		return false // asked again by the next write outside it
	} else if err != nil {
		probe.retryAt = c.now().Add(probeRetry)
		c.log.Debug().Err(err).Msg("Could not tell whether whatsmeow's token store shares the plugin's database; writing to it apart for now")
	}
	acc.join.Store(probe)
	c.log.Debug().Bool("joins", joins).Msg("Asked whether whatsmeow's token store joins the plugin's transactions")
	return joins
}

// joinAnswer is the recorded answer for whatsmeow's current token store,
// or nil when there is none yet, or a failed probe is due to be retried.
func (c *Core) joinAnswer(acc *accountState) *joinProbe {
	probe := acc.join.Load()
	if probe == nil || probe.inner != c.inner.Load() || (!probe.retryAt.IsZero() && c.now().After(probe.retryAt)) {
		return nil
	}
	return probe
}

// joins is the recorded answer, or the probe's asked now when there is
// none and ctx is not in a transaction, where the probe cannot run: for
// writes, which may wait for it.
func (c *Core) joins(ctx context.Context, acc *accountState) bool {
	if probe := c.joinAnswer(acc); probe != nil {
		return probe.joins
	}
	return !acc.store.InTransaction(ctx) && c.probeJoin(ctx, acc)
}

// joinsWhatsmeow is the recorded answer, or false while there is none:
// reads never wait for the probe.
func (c *Core) joinsWhatsmeow(acc *accountState) bool {
	probe := c.joinAnswer(acc)
	return probe != nil && probe.joins
}

// storeThrough runs write, which returns the token writes whatsmeow's store
// must get too, and that write-through: in one transaction when whatsmeow's
// store joins the plugin's, else one after the other. Anything failing in
// the joined transaction rolls it back whole, and the two then run apart,
// where a failed write-through is logged and never fails the plugin's
// write. write must be safe to run twice; joined tells it which way it
// runs (apart, a step that fails after others committed is the step's own
// failure, not the whole write's).
//
// A write that arrives inside a transaction already running (whatsmeow's,
// say) runs apart, in it: a failure there cannot be rolled back alone.
func (c *Core) storeThrough(ctx context.Context, acc *accountState, write func(ctx context.Context, joined bool) ([]sqlstore.TokenWrite, error)) ([]sqlstore.TokenWrite, error) {
	if !acc.store.InTransaction(ctx) && c.joins(ctx, acc) {
		var through []sqlstore.TokenWrite
		err := acc.store.InTxn(ctx, func(ctx context.Context) error {
			var err error
			if through, err = write(ctx, true); err != nil {
				return err
			}
			through = lastPerContact(through)
			if _, ok := c.innerStore().(*wsqlstore.SQLStore); ok {
				// whatsmeow's own SQL store: its statement, run faster.
				return acc.store.PutWhatsmeowTokens(ctx, through...)
			}
			return c.writeThroughInner(ctx, through)
		})
		if err == nil {
			c.clearWarned("write-through")
			return through, nil
		}
		c.log.Debug().Err(err).Msg("The write joined with whatsmeow's rolled back; writing the two apart")
	}
	through, err := write(ctx, false)
	if err != nil {
		return nil, err
	}
	through = lastPerContact(through)
	c.writeThroughOrdered(ctx, acc, through)
	return through, nil
}

// writeThroughRounds bounds writeThroughOrdered: each round past the first
// needs a newer token for the same contact to commit between its write and
// its check, so a bound this small is never reached in practice.
const writeThroughRounds = 4

// recheckChunk bounds the contacts one check reads: a placeholder each,
// far below SQLite's limit on bound parameters.
const recheckChunk = 1000

// writeThroughOrdered writes through, apart, tokens the plugin already
// committed. Two such writes for one contact can reach whatsmeow's table in
// the other order than they committed in the plugin's: the one with the
// older token held up (the scheduler, a slow statement) lands last, and
// whatsmeow 2025-12's upsert keeps whatever lands last. So after its write,
// each checks the plugin's rows again and writes through what they hold
// now where that moved on, until the two agree. The write that lands last
// is then one whose check, made after it landed, found the plugin's row as
// written, and any newer token commits after that check and is written
// through after it: whatsmeow's table ends with the plugin's newest token.
// (Joined writes need none of this: the plugin's row lock orders them with
// their write-through.)
func (c *Core) writeThroughOrdered(ctx context.Context, acc *accountState, writes []sqlstore.TokenWrite) {
	for round := 1; len(writes) > 0; round++ {
		c.writeThrough(ctx, writes)
		if round == writeThroughRounds {
			c.log.Warn().Stringer("first", writes[0].Contact).Int("contacts", len(writes)).
				Msg("Privacy tokens kept changing while being copied to whatsmeow's own store; the next token corrects it")
			return
		}
		writes = c.movedOn(ctx, acc, writes)
	}
}

// movedOn reads the plugin's rows of writes and returns, as writes, those
// that hold another token or timestamp now. A row without a token (pruned
// meanwhile) leaves whatsmeow's as it is. A failed read returns nothing:
// the write-through made stands, as it did before the check.
func (c *Core) movedOn(ctx context.Context, acc *accountState, writes []sqlstore.TokenWrite) []sqlstore.TokenWrite {
	var moved []sqlstore.TokenWrite
	for start := 0; start < len(writes); start += recheckChunk {
		chunk := writes[start:min(start+recheckChunk, len(writes))]
		contacts := make([]types.JID, len(chunk))
		written := make(map[types.JID]sqlstore.TokenWrite, len(chunk))
		for i, write := range chunk {
			contacts[i] = write.Contact
			written[write.Contact.ToNonAD()] = write
		}
		rows, err := acc.store.GetMany(ctx, contacts...)
		if err != nil {
			c.log.Debug().Err(err).Msg("Could not check the plugin's rows after a write-through")
			return moved
		}
		for _, row := range rows {
			write, ok := written[row.Contact.ToNonAD()]
			if ok && len(row.Token) > 0 && (row.TokenTS != write.TokenTS || !bytes.Equal(row.Token, write.Token)) {
				moved = append(moved, sqlstore.TokenWrite{Contact: write.Contact, Token: row.Token, TokenTS: row.TokenTS})
			}
		}
	}
	return moved
}

// lastPerContact keeps the last of several writes for one contact (a
// history mend after the token write it corrects): one statement may not
// write a row twice.
func lastPerContact(writes []sqlstore.TokenWrite) []sqlstore.TokenWrite {
	last := make(map[types.JID]int, len(writes))
	for i, write := range writes {
		last[write.Contact.ToNonAD()] = i
	}
	if len(last) == len(writes) {
		return writes
	}
	kept := make([]sqlstore.TokenWrite, 0, len(last))
	for i, write := range writes {
		if last[write.Contact.ToNonAD()] == i {
			kept = append(kept, write)
		}
	}
	return kept
}

// lookupByLID is the cold read of a contact by LID when whatsmeow's tables
// share the plugin's database: its rows under the LID and under the phone
// number whatsmeow's LID map pairs with it, and that phone number, in one
// statement. ok is false when the plugin must resolve and read apart.
func (c *Core) lookupByLID(ctx context.Context, acc *accountState, lid types.JID) (pn types.JID, rows []*sqlstore.Entry, ok bool) {
	if !c.joinsWhatsmeow(acc) {
		return types.EmptyJID, nil, false
	}
	pn, rows, err := acc.store.GetByLID(ctx, lid)
	if err != nil {
		// lookup reads again the usual way, and reports its own failure.
		c.log.Debug().Err(err).Stringer("contact", lid).Msg("Failed to read a contact by LID in one statement")
		return types.EmptyJID, nil, false
	}
	// As resolve does: a mapping that pairs a contact with our own account
	// is ignored, and so are the rows under our own number.
	if own := c.own(); !pn.IsEmpty() && own.mapsToOwn(lid, pn) {
		kept := rows[:0]
		for _, row := range rows {
			if row.Contact.ToNonAD() != pn {
				kept = append(kept, row)
			}
		}
		pn, rows = types.EmptyJID, kept
	}
	return pn, rows, true
}
