package hooks

import (
	"context"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/sqlstore"
)

// explainInput is everything known about one contact at one moment. A
// running plugin gathers it from its cache (Core.Explain); the inspector
// gathers it from the database (ExplainStored). Explain turns either into
// the same Explanation.
type explainInput struct {
	// Contact is the JID asked about; Key, LID and PN are how it resolves.
	Contact, Key, LID, PN types.JID
	Own                   ownJIDs
	// Token, TokenTS and SenderTS are the merged stored entry.
	Token             []byte
	TokenTS, SenderTS int64
	Salt              []byte
	SaltSource        string
	Policy            Policy
	Timelock          TimelockState
	NewChatCap        NewChatCapState
	Now               time.Time
}

// Explanation is what the plugin knows about one contact and what the next
// message to it would carry, and why. It never holds token or salt bytes:
// the token appears as a short hash.
type Explanation struct {
	Contact  string `json:"contact"`
	Key      string `json:"key"`
	LID      string `json:"lid,omitempty"`
	PN       string `json:"pn,omitempty"`
	LIDKnown bool   `json:"lid_known"`
	// Token is hooks.ShortHash of the token the contact issued us, "" if none.
	Token           string    `json:"token,omitempty"`
	TokenTimestamp  time.Time `json:"token_timestamp,omitzero"`
	TokenExpires    time.Time `json:"token_expires,omitzero"`
	TokenValid      bool      `json:"token_valid"`
	SenderTimestamp time.Time `json:"sender_timestamp,omitzero"`
	// IssuanceDue: the next message would make the plugin issue our token.
	IssuanceDue bool   `json:"issuance_due"`
	SaltPresent bool   `json:"salt_present"`
	SaltSource  string `json:"salt_source,omitempty"`
	// Attach, Cause and Reason are the decision for a message sent now.
	Attach string `json:"attach"`
	Cause  string `json:"cause"`
	Reason string `json:"reason"`
	// IfRefused is how a 463 for that message would be diagnosed, and
	// Hint what to do about it.
	IfRefused Diagnosis     `json:"if_refused"`
	Hint      string        `json:"hint"`
	Timelock  TimelockState `json:"timelock"`
	// NewChatCap is the account's new-chat cap as last received, and
	// NewChatCapPolicy what the AB props say of it.
	NewChatCap       NewChatCapState  `json:"new_chat_cap"`
	NewChatCapPolicy NewChatCapPolicy `json:"new_chat_cap_policy"`
}

// explain applies the decision and the diagnosis rules to what is known.
func explain(in explainInput) Explanation {
	now := in.Now.Unix()
	decision := decideFrom(decisionInput{
		To: in.Contact, Own: in.Own, LID: in.LID, Token: in.Token, TokenTS: in.TokenTS,
		Salt: in.Salt, Policy: in.Policy, Now: now,
	})
	out := Explanation{
		Contact:     in.Contact.String(),
		Key:         in.Key.String(),
		LIDKnown:    !in.LID.IsEmpty(),
		SaltPresent: len(in.Salt) > 0,
		SaltSource:  in.SaltSource,
		Attach:      decision.Attach.String(),
		Cause:       decision.Cause.String(),
		Reason:      decision.Reason,
		Timelock:    in.Timelock,
		NewChatCap:  in.NewChatCap,
		// The policy in force, from the same props as the decision.
		NewChatCapPolicy: in.Policy.NewChatCap,
	}
	if !in.LID.IsEmpty() {
		out.LID = in.LID.String()
	}
	if !in.PN.IsEmpty() {
		out.PN = in.PN.String()
	}
	if len(in.Token) > 0 {
		out.Token = ShortHash(in.Token)
		out.TokenTimestamp = time.Unix(in.TokenTS, 0)
		out.TokenExpires = time.Unix(in.Policy.Timing.TokenExpiry(in.TokenTS), 0)
		out.TokenValid = in.Policy.Timing.ReceivedTokenValid(in.TokenTS, now)
	}
	if in.SenderTS > 0 {
		out.SenderTimestamp = time.Unix(in.SenderTS, 0)
	}
	out.IssuanceDue = ineligible(in.Contact, in.Own) == "" && in.Policy.Timing.IssuanceDue(in.SenderTS, now)
	if ineligible(in.Contact, in.Own) == "" {
		out.IfRefused = classify(decision, in.Timelock, in.Now)
		out.Hint = out.IfRefused.Hint()
	}
	return out
}

// Explain returns everything the running plugin knows about one contact.
func (c *Core) Explain(ctx context.Context, jid types.JID) (Explanation, error) {
	v, err := c.view(ctx, jid)
	if err != nil {
		return Explanation{}, fmt.Errorf("tctoken: explain %s: %w", jid, err)
	}
	in := explainInput{
		Contact: jid.ToNonAD(), Key: v.key, LID: v.lid, PN: v.pn, Own: c.own(),
		Token: v.entry.token, TokenTS: v.entry.tokenTS, SenderTS: v.entry.senderTS,
		Salt: c.Salt(), Policy: *v.acc.policy.Load(), Timelock: c.Timelock(), NewChatCap: c.NewChatCap(), Now: c.now(),
	}
	if len(in.Salt) > 0 {
		_, source, _, err := v.acc.store.GetSalt(ctx)
		if err != nil {
			c.metrics.dbError("get_salt")
			return Explanation{}, fmt.Errorf("tctoken: explain %s: read the salt's source: %w: %w", jid, ErrDatabase, err)
		}
		in.SaltSource = string(source)
	}
	return explain(in), nil
}

// ExplainStored explains one contact of one account from the database
// alone, as the inspector does for a bridge that is not running: the LID
// map is whatsmeow's table, the policy is the stored AB props over the
// defaults.
func ExplainStored(ctx context.Context, container *sqlstore.Container, account, jid types.JID, defaults Defaults, now time.Time) (Explanation, error) {
	st := container.ForAccount(account)
	lid, pn, err := container.ResolveStored(ctx, jid)
	if err != nil {
		return Explanation{}, fmt.Errorf("tctoken: explain %s for %s: %w", jid, account, err)
	}
	key := jid.ToNonAD()
	if !lid.IsEmpty() {
		key = lid
	}
	candidates := []types.JID{key}
	for _, other := range []types.JID{lid, pn} {
		if !other.IsEmpty() && other != key {
			candidates = append(candidates, other)
		}
	}
	rows, err := st.GetMany(ctx, candidates...)
	if err != nil {
		return Explanation{}, fmt.Errorf("tctoken: explain %s for %s: read its tokens: %w", jid, account, err)
	}
	entry := mergeRows(rows)
	salt, source, _, err := st.GetSalt(ctx)
	if err != nil {
		return Explanation{}, fmt.Errorf("tctoken: explain %s for %s: read the salt: %w", jid, account, err)
	}
	props, err := st.GetProps(ctx)
	if err != nil {
		return Explanation{}, fmt.Errorf("tctoken: explain %s for %s: read the AB props: %w", jid, account, err)
	}
	var values map[int]string
	if props != nil {
		values = props.Values
	}
	timelock, err := st.GetTimelock(ctx)
	if err != nil {
		return Explanation{}, fmt.Errorf("tctoken: explain %s for %s: read the timelock: %w", jid, account, err)
	}
	newChatCap, err := st.GetNewChatCap(ctx)
	if err != nil {
		return Explanation{}, fmt.Errorf("tctoken: explain %s for %s: read the new-chat cap: %w", jid, account, err)
	}
	own := ownJIDs{PN: account.ToNonAD()}
	if ownLID, _, err := container.ResolveStored(ctx, own.PN); err == nil {
		own.LID = ownLID
	}
	in := explainInput{
		Contact: jid.ToNonAD(), Key: key, LID: lid, PN: pn, Own: own,
		Token: entry.token, TokenTS: entry.tokenTS, SenderTS: entry.senderTS,
		Salt: salt, Policy: ComputePolicy(defaults, values, nil), Timelock: TimelockFromStored(timelock),
		NewChatCap: NewChatCapFromStored(newChatCap), Now: now,
	}
	if len(salt) > 0 {
		in.SaltSource = string(source)
	}
	return explain(in), nil
}
