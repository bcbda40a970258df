// Package hooks is the machinery behind package tctoken: the interposer on
// whatsmeow's privacy token store, the event handlers, issuance, pruning,
// AB props and the pure protocol logic (bucket maths, the fallback chain,
// stanza builders and parsers).
//
// The contract: package tctoken (the root) is the API; hooks is not.
// hooks exports only what the root package, cmd/ and examples/ use, and
// everything else is unexported; its exports change whenever those need.
//
// # Steps
//
// Every function is named after the step it does, with one verb per step:
//
//	a received token:  receive -> check -> resolve -> store -> write through -> cache
//	                   (interposer.go, history.go, issuance.go -> ingest.go, resolve.go, shared.go, cache.go)
//	a send:            decide -> guard -> send -> issue | recover | diagnose
//	                   (decide.go -> guard.go -> send.go -> issuance.go, recovery.go, diagnosis.go and timelock.go)
//	a group call:      gate -> attach (2025-12's add) | delegate (groupadd.go)
//	an account:        bind -> import -> prune ... logout
//	                   (account.go -> adopt.go -> connection.go ... fence.go, events.go)
//
// receive takes tokens from whatever brought them; check rejects what no
// server sends; resolve finds the key a contact's row lives under (its LID
// when known); store writes the plugin's tables, monotonically; write
// through copies what was stored into whatsmeow's own table; cache brings
// the in-memory entries up to date (or marks them stale). decide applies
// the fallback chain (tctoken, else cstoken, else nothing) and pins the
// decision in the send's context (pin.go); guard keeps a first contact
// back when the policy asks and the server said the account may not reach
// out (a timelock, the new-chat cap); after the send, issue sends our
// own token when due, and after a 463, diagnose says why and recover does
// what the policy allows.
package hooks
