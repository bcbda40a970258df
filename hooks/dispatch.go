package hooks

// dispatch hands the bridge a plugin event through whatsmeow's own event
// handlers, from a goroutine of its own: the caller may be inside a
// handler, where dispatching again could wait on whatsmeow's handler lock.
// Close does not wait for it: the bridge's handler of the event may be what
// calls Close, which would then wait on itself.
func (c *Core) dispatch(evt any) {
	if c.closed.Load() {
		return
	}
	//lint:ignore SA1019 whatsmeow exports no other way to hand the bridge's own event handlers an event.
	go c.cli.DangerousInternals().DispatchEvent(evt)
}
