package tctoken

// NativeTokens reports whether the client's whatsmeow attaches tokens,
// computes cstokens and issues by itself (versions after 2025-12, such as
// commit 33cfac51). The plugin then leaves those mechanics to whatsmeow and
// is the store and the policy behind them: expiry by the server's AB props,
// the gates, the salt rules, persistent sender timestamps. On whatsmeow
// 2025-12 it is false and the plugin does every step itself. See the README
// for what differs.
func (p *Plugin) NativeTokens() bool { return p.core.Native() }
