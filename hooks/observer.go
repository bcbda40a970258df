package hooks

// Observer receives the plugin's counts, for metrics. The plugin calls it
// on its hot paths, so implementations must be cheap and safe from any
// goroutine. A nil Observer costs one nil check per call site.
type Observer interface {
	// TokenAttached counts a 1:1 send by what the plugin attached.
	TokenAttached(kind Attach)
	// Refused counts a 463 by its diagnosis.
	Refused(diagnosis Diagnosis)
	// Issued counts issuances ("issue") and 463 reissues ("reissue"),
	// by outcome, one per contact.
	Issued(kind string, ok bool, contacts int)
	// Pruned counts one prune and the rows it removed; failed is true
	// when it failed.
	Pruned(rows int64, failed bool)
	// DBError counts a failed database operation by name.
	DBError(op string)
	// Timelock reports whether a reach-out timelock is in force.
	Timelock(inForce bool)
	// NewChatCap reports the new-chat cap's status ("" when unknown).
	NewChatCap(status string)
}

// observer wraps the bridge's Observer with the nil checks.
type observer struct{ o Observer }

func (m observer) tokenAttached(kind Attach) {
	if m.o != nil {
		m.o.TokenAttached(kind)
	}
}

func (m observer) refused(d Diagnosis) {
	if m.o != nil {
		m.o.Refused(d)
	}
}

func (m observer) issued(kind string, ok bool, contacts int) {
	if m.o != nil && contacts > 0 {
		m.o.Issued(kind, ok, contacts)
	}
}

func (m observer) pruned(rows int64, failed bool) {
	if m.o != nil {
		m.o.Pruned(rows, failed)
	}
}

func (m observer) dbError(op string) {
	if m.o != nil {
		m.o.DBError(op)
	}
}

func (m observer) timelock(inForce bool) {
	if m.o != nil {
		m.o.Timelock(inForce)
	}
}

func (m observer) newChatCap(status string) {
	if m.o != nil {
		m.o.NewChatCap(status)
	}
}
