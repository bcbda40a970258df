package hooks

import (
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

// joinsWhatsmeow is the recorded answer, or false while there is none:
// reads never wait for the probe.
func (c *Core) joinsWhatsmeow(acc *accountState) bool {
	probe := c.joinAnswer(acc)
	return probe != nil && probe.joins
}

// writeJoined runs write, which returns the token writes whatsmeow's store
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
func (c *Core) writeJoined(ctx context.Context, acc *accountState, write func(ctx context.Context, joined bool) ([]sqlstore.TokenWrite, error)) ([]sqlstore.TokenWrite, error) {
	joins := false
	if !acc.store.InTransaction(ctx) {
		if probe := c.joinAnswer(acc); probe != nil {
			joins = probe.joins
		} else {
			joins = c.probeJoin(ctx, acc)
		}
	}
	if joins {
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
			return c.putInner(ctx, through)
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
	c.writeThrough(ctx, through)
	return through, nil
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
	if own := c.own(); !pn.IsEmpty() && own.Is(pn) != own.Is(lid) {
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
