// Package hooks is the machinery behind package tctoken: the interposer on
// whatsmeow's privacy token store, the event handlers, issuance, pruning,
// AB props and the pure protocol logic (bucket maths, the fallback chain,
// stanza builders and parsers).
//
// It is not a stable API. It is exported so that the root package, the
// example bridge and tests can reach it; its names and signatures change
// whenever the plugin needs them to. Programs use package tctoken, which
// re-exports what is meant to stay (Decision, Cause, Timing, the AB prop
// codes, the errors callers match with errors.Is).
package hooks
