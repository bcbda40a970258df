package hooks

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/sqlstore"
)

// ErrLoggedOut is returned by a write to an account that logged out while
// the write was on its way: the account's rows are being deleted, and the
// write must not bring any back.
var ErrLoggedOut = errors.New("tctoken: the account logged out")

// accountFence keeps a logout's deletion and the account's writers apart.
// Every write to the account's tables enters the fence and leaves it when
// its statement or transaction has ended; forgetAccount shuts it, which
// refuses every later write and waits for those inside to end, and only
// then deletes. A write that started before the logout (the import, a
// history sync, an issuance) therefore either committed before the
// deletion, which removes it, or never commits.
//
// Entering never blocks, so a write nested in another (the statements of a
// joined transaction) cannot deadlock against a logout that waits.
type accountFence struct {
	mu     sync.Mutex
	active int
	shut   bool
	idle   chan struct{} // closed once shut and no write is inside
	// gone is cancelled when the fence shuts: long writes (the import) run
	// with it, so that a logout does not wait for all of their batches.
	gone   context.Context
	cancel context.CancelFunc
}

func newAccountFence() *accountFence {
	f := &accountFence{idle: make(chan struct{})}
	f.gone, f.cancel = context.WithCancel(context.Background())
	return f
}

// enter admits a write, or refuses it with ErrLoggedOut once shut.
func (f *accountFence) enter() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.shut {
		return ErrLoggedOut
	}
	f.active++
	return nil
}

// leave ends a write that enter admitted.
func (f *accountFence) leave() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.active--
	if f.shut && f.active == 0 {
		close(f.idle)
	}
}

// close refuses every later write and cancels the long ones. It reports
// how many writes are inside; wait waits for them.
func (f *accountFence) close() (inside int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.shut {
		f.shut = true
		f.cancel()
		if f.active == 0 {
			close(f.idle)
		}
	}
	return f.active
}

// wait waits until no write is inside a closed fence.
func (f *accountFence) wait(ctx context.Context) error {
	select {
	case <-f.idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the writes under way: %w", ctx.Err())
	}
}

// closed reports whether the fence shut.
func (f *accountFence) closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.shut
}

// fenced runs one write inside the fence.
func fenced[T any](f *accountFence, write func() (T, error)) (T, error) {
	if err := f.enter(); err != nil {
		var zero T
		return zero, err
	}
	defer f.leave()
	return write()
}

// fencedErr is fenced for a write that returns only an error.
func fencedErr(f *accountFence, write func() error) error {
	_, err := fenced(f, func() (struct{}, error) { return struct{}{}, write() })
	return err
}

// fencedStore puts every write of an account's store inside its fence;
// reads pass straight through. A write method added to a storage interface
// (storage.go) needs its override here: TestFenceWrapsEveryWrite fails
// until it has one.
type fencedStore struct {
	AccountStore
	fence *accountFence
}

func (s fencedStore) PutTokens(ctx context.Context, writes ...sqlstore.TokenWrite) ([]bool, error) {
	return fenced(s.fence, func() ([]bool, error) { return s.AccountStore.PutTokens(ctx, writes...) })
}

func (s fencedStore) SetSenderTimestamps(ctx context.Context, ts int64, contacts ...types.JID) error {
	return fencedErr(s.fence, func() error { return s.AccountStore.SetSenderTimestamps(ctx, ts, contacts...) })
}

func (s fencedStore) PutSenderTimestamps(ctx context.Context, writes ...sqlstore.SenderWrite) error {
	return fencedErr(s.fence, func() error { return s.AccountStore.PutSenderTimestamps(ctx, writes...) })
}

func (s fencedStore) MendHistoryTimestamp(ctx context.Context, contact types.JID, token []byte, wrongTS, rightTS int64) (bool, error) {
	return fenced(s.fence, func() (bool, error) {
		return s.AccountStore.MendHistoryTimestamp(ctx, contact, token, wrongTS, rightTS)
	})
}

func (s fencedStore) MendHistoryTimestamps(ctx context.Context, mends ...sqlstore.HistoryMend) ([]bool, error) {
	return fenced(s.fence, func() ([]bool, error) { return s.AccountStore.MendHistoryTimestamps(ctx, mends...) })
}

// ImportWhatsmeowTokens runs the whole import inside the fence, with a
// context that a logout cancels: the batch under way then ends, the next
// one never starts, and the logout deletes what the import had copied.
func (s fencedStore) ImportWhatsmeowTokens(ctx context.Context, recvCutoff int64, write func(ctx context.Context, batch sqlstore.ImportBatch) error) (sqlstore.ImportResult, error) {
	return fenced(s.fence, func() (sqlstore.ImportResult, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(s.fence.gone, cancel)()
		result, err := s.AccountStore.ImportWhatsmeowTokens(ctx, recvCutoff, write)
		if err != nil && s.fence.closed() {
			err = fmt.Errorf("%w: %w", ErrLoggedOut, err)
		}
		return result, err
	})
}

// InTxn holds the fence for the whole transaction, so that a logout never
// deletes between its statements and its commit.
func (s fencedStore) InTxn(ctx context.Context, fn func(ctx context.Context) error) error {
	return fencedErr(s.fence, func() error { return s.AccountStore.InTxn(ctx, fn) })
}

func (s fencedStore) PutWhatsmeowTokens(ctx context.Context, writes ...sqlstore.TokenWrite) error {
	return fencedErr(s.fence, func() error { return s.AccountStore.PutWhatsmeowTokens(ctx, writes...) })
}

func (s fencedStore) SetWhatsmeowSenderTimestamps(ctx context.Context, ts int64, contacts ...types.JID) (int64, error) {
	return fenced(s.fence, func() (int64, error) { return s.AccountStore.SetWhatsmeowSenderTimestamps(ctx, ts, contacts...) })
}

func (s fencedStore) SetAppStateSalt(ctx context.Context, salt []byte) error {
	return fencedErr(s.fence, func() error { return s.AccountStore.SetAppStateSalt(ctx, salt) })
}

func (s fencedStore) RemoveAppStateSalt(ctx context.Context) error {
	return fencedErr(s.fence, func() error { return s.AccountStore.RemoveAppStateSalt(ctx) })
}

func (s fencedStore) SetHistorySalt(ctx context.Context, salt []byte) (bool, error) {
	return fenced(s.fence, func() (bool, error) { return s.AccountStore.SetHistorySalt(ctx, salt) })
}

func (s fencedStore) ReplaceProps(ctx context.Context, snap sqlstore.PropsSnapshot) error {
	return fencedErr(s.fence, func() error { return s.AccountStore.ReplaceProps(ctx, snap) })
}

func (s fencedStore) MergeProps(ctx context.Context, snap sqlstore.PropsSnapshot) error {
	return fencedErr(s.fence, func() error { return s.AccountStore.MergeProps(ctx, snap) })
}

func (s fencedStore) PutTimelock(ctx context.Context, tl sqlstore.Timelock) error {
	return fencedErr(s.fence, func() error { return s.AccountStore.PutTimelock(ctx, tl) })
}

func (s fencedStore) PutNewChatCap(ctx context.Context, nc sqlstore.NewChatCap) error {
	return fencedErr(s.fence, func() error { return s.AccountStore.PutNewChatCap(ctx, nc) })
}

func (s fencedStore) PutSaltBackfill(ctx context.Context, at int64, result string) error {
	return fencedErr(s.fence, func() error { return s.AccountStore.PutSaltBackfill(ctx, at, result) })
}
