package hooks

import (
	"context"

	"github.com/tctoken/tctoken/internal/compat"
)

// saltStore replaces Client.Store.NCTSalt on a whatsmeow that computes
// cstokens itself, as TokenStore replaces its token store: whatsmeow then
// computes a cstoken only from the salt the plugin hands it, only when the
// plugin's decision is a cstoken, and its own salt writes feed the plugin's
// salt rules (app state authoritative, history sync only a backfill).
type saltStore struct {
	core  *Core
	inner compat.NCTSaltStore
}

var _ compat.NCTSaltStore = (*saltStore)(nil)

// attachSaltStore interposes on whatsmeow's NCT salt store where it has one
// the plugin can stand in for (not on whatsmeow 2025-12).
func (c *Core) attachSaltStore() {
	current, ok := c.compat.NCTSaltStore(c.cli.Store)
	if !ok {
		return
	}
	ours := &saltStore{core: c, inner: current}
	if previous, ok := current.(*saltStore); ok {
		// Enabled again on the same client: wrap what the first one wrapped.
		ours.inner = previous.inner
	}
	c.compat.SetNCTSaltStore(c.cli.Store, ours)
	ours.importSalt()
}

// importSalt takes over a salt whatsmeow captured while the plugin was not
// enabled, once, when the plugin starts without one of its own. whatsmeow
// does not record whether it came from app state or history sync, so it is
// taken as a history-sync backfill: it never overrides or revives what app
// state said.
func (s *saltStore) importSalt() {
	c := s.core
	if s.inner == nil || c.storeID() == nil {
		return
	}
	c.goBackground(func(ctx context.Context) {
		salt, err := s.inner.GetNCTSalt(ctx)
		if err != nil {
			c.log.Warn().Err(err).Msg("Failed to read whatsmeow's own NCT salt for import")
			return
		}
		if len(salt) == 0 || len(c.Salt()) > 0 {
			return
		}
		c.applyHistorySalt(ctx, salt)
	})
}

// GetNCTSalt is read by whatsmeow with the send's context, only when it
// attached no tctoken. The plugin's decision pinned in that context says
// whether a cstoken goes out; without one (a send that bypassed
// Plugin.SendMessage) the AB gate 24941 decides. nil vetoes the cstoken.
func (s *saltStore) GetNCTSalt(ctx context.Context) ([]byte, error) {
	c := s.core
	if c.closed.Load() {
		return s.innerGet(ctx)
	}
	if pin := pinOf(ctx); pin != nil {
		if pin.decision.Attach != AttachCSToken {
			return nil, nil
		}
		return c.Salt(), nil
	}
	if !c.Policy().AttachCSToken {
		return nil, nil
	}
	return c.Salt(), nil
}

// PutNCTSalt is whatsmeow storing a salt from an app-state SET or from a
// history sync; the call does not say which. whatsmeow's own table gets it
// as before. The plugin takes app-state salts from its own re-read of
// regular_high, scheduled here, and history-sync salts from its
// events.HistorySync handler, which applies them only as a backfill.
func (s *saltStore) PutNCTSalt(ctx context.Context, salt []byte) error {
	if !s.core.closed.Load() && s.core.appState != nil {
		s.core.appState.scheduleRescan()
	}
	if s.inner == nil {
		return nil
	}
	return s.inner.PutNCTSalt(ctx, salt)
}

// DeleteNCTSalt is whatsmeow applying an app-state REMOVE, the only way it
// deletes the salt: the plugin withdraws its salt too, so that no cstoken
// goes out from a salt the account removed.
func (s *saltStore) DeleteNCTSalt(ctx context.Context) error {
	if !s.core.closed.Load() {
		if s.core.appState != nil {
			s.core.appState.removals.Add(1)
		}
		if err := s.core.removeAppStateSalt(ctx, s.core.saltSeq.Add(1)); err != nil {
			s.core.log.Err(err).Msg("Failed to remove the NCT salt after whatsmeow removed its own")
		}
	}
	if s.inner == nil {
		return nil
	}
	return s.inner.DeleteNCTSalt(ctx)
}

func (s *saltStore) innerGet(ctx context.Context) ([]byte, error) {
	if s.inner == nil {
		return nil, nil
	}
	return s.inner.GetNCTSalt(ctx)
}
