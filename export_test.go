package tctoken

import "github.com/tctoken/tctoken/hooks"

// What the tests of package tctoken_test reach beyond the public API. They
// are compiled into the test binary only: a bridge never sees them.

// IssueBatchSize is how many contacts one queued privacy IQ covers at most.
const IssueBatchSize = hooks.IssueBatchSize

// AccountStore is the storage of one account as the plugin uses it; the
// SQL store implements it. Its methods change whenever the plugin needs
// them to, which is why it is not public API.
type AccountStore = hooks.AccountStore

// WithStoreWrapper wraps each account's store before the plugin uses it: a
// test injects a failing or slow store in one line (embed the AccountStore
// it is given and override a method).
func WithStoreWrapper(wrap func(AccountStore) AccountStore) Option {
	return Option{func(cfg *hooks.Config) { cfg.WrapStore = wrap }}
}
