package hooks

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

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
//
// whatsmeow calls it in the order it applies an app-state sync's mutations,
// but dispatches a SET's events.AppState only after the whole sync, after
// a REMOVE that followed the SET too. The call therefore takes the SET's
// seq, kept for the event (see saltPuts), so that the event orders before
// the removal and does not bring the removed salt back.
func (s *saltStore) PutNCTSalt(ctx context.Context, salt []byte) error {
	if !s.core.closed.Load() {
		if len(salt) > 0 {
			s.core.saltPuts.remember(salt, s.core.saltSeq.Add(1), time.Now())
		}
		if s.core.appState != nil {
			s.core.appState.scheduleRescan()
		}
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

const (
	// saltPutsMax bounds the seqs kept for events to come. One sync brings
	// one or two SETs of the salt; the bound only matters for calls whose
	// event never comes.
	saltPutsMax = 16
	// saltPutTTL is how long a seq waits for its event: whatsmeow dispatches
	// the events of a sync as soon as it has fetched and applied all of it.
	// An event later than that takes a seq of its own as on whatsmeow
	// 2025-12, and the re-read PutNCTSalt scheduled still corrects it.
	saltPutTTL = time.Minute
)

// saltPuts remembers, for each PutNCTSalt, the seq it took, keyed by a
// digest of the salt (the salt itself is not kept), until the
// events.AppState of the same salt takes it. Each seq is used once.
//
// Not every call has an event to come: whatsmeow also stores history
// sync's salt through PutNCTSalt, a full sync applies SETs without events
// (unless the bridge opted in), and a sync that fails after applying drops
// its events. Those seqs are older than the SET whose event arrives, which
// whatsmeow applied just before dispatching it, so an event takes the
// newest seq of its salt; the others expire. Taking an older leftover
// instead could order the SET before a removal it followed, and drop it.
// Two SETs of the same salt are interchangeable: which of their seqs each
// event takes leaves the same salt in force. One window remains: a history
// sync storing the same salt between an app-state SET and that SET's event
// lends the event its later seq, which can order it after a REMOVE that
// followed the SET; the re-read that history write schedules numbers
// itself later still and removes the salt again.
type saltPuts struct {
	mu      sync.Mutex
	entries []saltPut // in the order remembered
}

type saltPut struct {
	sum [sha256.Size]byte
	seq uint64
	at  time.Time
}

// remember keeps seq for the event of salt, forgetting the oldest entry
// when full.
func (p *saltPuts) remember(salt []byte, seq uint64, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire(now)
	if len(p.entries) == saltPutsMax {
		p.entries = append(p.entries[:0], p.entries[1:]...)
	}
	p.entries = append(p.entries, saltPut{sum: sha256.Sum256(salt), seq: seq, at: now})
}

// take returns and forgets the newest seq kept for salt; false if none.
func (p *saltPuts) take(salt []byte, now time.Time) (uint64, bool) {
	if len(salt) == 0 {
		return 0, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire(now)
	if len(p.entries) == 0 {
		return 0, false
	}
	sum := sha256.Sum256(salt)
	newest := -1
	for i, e := range p.entries {
		if e.sum == sum && (newest < 0 || e.seq > p.entries[newest].seq) {
			newest = i
		}
	}
	if newest < 0 {
		return 0, false
	}
	seq := p.entries[newest].seq
	p.entries = append(p.entries[:newest], p.entries[newest+1:]...)
	return seq, true
}

// expire forgets the entries older than saltPutTTL.
func (p *saltPuts) expire(now time.Time) {
	n := 0
	for n < len(p.entries) && now.Sub(p.entries[n].at) >= saltPutTTL {
		n++
	}
	if n > 0 {
		p.entries = append(p.entries[:0], p.entries[n:]...)
	}
}
