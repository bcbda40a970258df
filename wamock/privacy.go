package wamock

import (
	"sort"
	"strconv"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// SetPrivacyHandler installs the answer to <iq xmlns="privacy"> requests
// (token issuance and privacy settings). h returns the reply; the server
// fills in a missing tag ("iq"), id, type ("result") and from. A nil reply,
// or no handler, is an empty result.
func (s *Server) SetPrivacyHandler(h func(iq *waBinary.Node) *waBinary.Node) {
	s.mu.Lock()
	s.privacyHandler = h
	s.mu.Unlock()
}

func (s *Server) handlePrivacyIQ(iq *waBinary.Node) *waBinary.Node {
	s.mu.Lock()
	h := s.privacyHandler
	form := s.issueForm
	s.mu.Unlock()
	if h == nil {
		return issueFormReply(iq, ParseIssuedTokens(iq), form)
	}
	reply := h(iq)
	if reply == nil {
		return ResultIQ(iq)
	}
	return completeReply(iq, reply)
}

// completeReply fills the attributes a handler may leave out.
func completeReply(iq, reply *waBinary.Node) *waBinary.Node {
	out := *reply
	out.Attrs = waBinary.Attrs{}
	for k, v := range reply.Attrs {
		out.Attrs[k] = v
	}
	if out.Tag == "" {
		out.Tag = "iq"
	}
	if _, ok := out.Attrs["id"]; !ok {
		out.Attrs["id"] = iq.Attrs["id"]
	}
	if _, ok := out.Attrs["type"]; !ok {
		out.Attrs["type"] = "result"
	}
	if _, ok := out.Attrs["from"]; !ok {
		out.Attrs["from"] = types.ServerJID
	}
	return &out
}

// IssuedToken is one <token> of a token-issuing privacy IQ.
type IssuedToken struct {
	JID  types.JID
	T    int64
	Type string
	// Form is the form of JID: a LID or a phone number.
	Form IssueForm
}

// IssueForm is the form of the JID a token is issued to. AB prop 14303
// (lid_trusted_token_issue_to_lid) says which one a client uses.
type IssueForm string

const (
	IssueFormLID   IssueForm = "lid"
	IssueFormPN    IssueForm = "pn"
	IssueFormOther IssueForm = "other"
)

// FormOf tells the form of a JID.
func FormOf(jid types.JID) IssueForm {
	switch jid.Server {
	case types.HiddenUserServer:
		return IssueFormLID
	case types.DefaultUserServer:
		return IssueFormPN
	}
	return IssueFormOther
}

// Issued returns every <token> of the privacy IQs the server received, in
// order, with its form.
func (s *Server) Issued() []IssuedToken {
	var out []IssuedToken
	for _, iq := range s.PrivacyIQs() {
		out = append(out, ParseIssuedTokens(iq)...)
	}
	return out
}

// RequireIssueForm makes the server refuse, without a handler, each <token>
// issued to a JID of another form: the result echoes it with error="400"
// (wamock's choice; no source shows the real server refusing one form). An
// empty form accepts both, which is the default.
func (s *Server) RequireIssueForm(form IssueForm) {
	s.mu.Lock()
	s.issueForm = form
	s.mu.Unlock()
}

// issueFormReply is the empty result the real server gives an issuance, with
// the tokens of the wrong form refused when a form is required.
func issueFormReply(iq *waBinary.Node, issued []IssuedToken, form IssueForm) *waBinary.Node {
	var refused []waBinary.Node
	for _, tok := range issued {
		if form != "" && tok.Form != form {
			refused = append(refused, waBinary.Node{Tag: "token", Attrs: waBinary.Attrs{"jid": tok.JID, "error": 400}})
		}
	}
	if len(refused) == 0 {
		return ResultIQ(iq)
	}
	return ResultIQ(iq, waBinary.Node{Tag: "tokens", Content: refused})
}

// ParseIssuedTokens reads <iq xmlns="privacy" type="set"><tokens><token
// jid=.. t=.. type=../>…; it returns nil for other stanzas.
func ParseIssuedTokens(iq *waBinary.Node) []IssuedToken {
	if iq.Tag != "iq" || strAttr(iq, "xmlns") != "privacy" || strAttr(iq, "type") != "set" {
		return nil
	}
	tokens, ok := iq.GetOptionalChildByTag("tokens")
	if !ok {
		return nil
	}
	var out []IssuedToken
	for _, tok := range tokens.GetChildren() {
		if tok.Tag != "token" {
			continue
		}
		t, _ := strconv.ParseInt(strAttr(&tok, "t"), 10, 64)
		jid := jidAttr(&tok, "jid")
		out = append(out, IssuedToken{JID: jid, T: t, Type: strAttr(&tok, "type"), Form: FormOf(jid)})
	}
	return out
}

// TokenReply builds a privacy result that carries token bytes, like
// <tokens><token jid=.. t=.. type="trusted_contact">BYTES</token></tokens>.
// tokens maps each JID to its bytes; t is the timestamp for all of them.
func TokenReply(iq *waBinary.Node, t int64, tokens map[types.JID][]byte) *waBinary.Node {
	jids := make([]types.JID, 0, len(tokens))
	for jid := range tokens {
		jids = append(jids, jid)
	}
	sort.Slice(jids, func(i, j int) bool { return jids[i].String() < jids[j].String() })
	children := make([]waBinary.Node, 0, len(jids))
	for _, jid := range jids {
		children = append(children, waBinary.Node{Tag: "token", Attrs: waBinary.Attrs{
			"jid": jid, "t": t, "type": "trusted_contact",
		}, Content: tokens[jid]})
	}
	return ResultIQ(iq, waBinary.Node{Tag: "tokens", Content: children})
}

// ABProps is the AB-props configuration the server hands out.
type ABProps struct {
	// ABKey defaults to "wamock".
	ABKey string
	Hash  string
	// Refresh is the refresh interval in seconds (default 86400).
	Refresh   int
	RefreshID int
	// Delta marks the reply as a delta (delta_update="true") to merge into
	// the client's cache.
	Delta bool
	// Props maps config codes to values.
	Props map[int]string
}

// ABPropsError makes the abt IQ fail with <error code=.. text=..>.
type ABPropsError struct {
	Code int
	Text string
}

// SetABProps sets the reply to <iq xmlns="abt" type="get"><props .../></iq>.
func (s *Server) SetABProps(p ABProps) {
	s.mu.Lock()
	s.abProps = &p
	s.abPropsErr = nil
	s.mu.Unlock()
}

// SetABPropsError makes abt IQs fail with the error; nil restores SetABProps.
func (s *Server) SetABPropsError(e *ABPropsError) {
	s.mu.Lock()
	s.abPropsErr = e
	s.mu.Unlock()
}

func (s *Server) handleABPropsIQ(iq *waBinary.Node) *waBinary.Node {
	s.mu.Lock()
	p, perr := s.abProps, s.abPropsErr
	s.mu.Unlock()
	if perr != nil {
		return ErrorIQ(iq, perr.Code, perr.Text)
	}
	if p == nil {
		p = &ABProps{}
	}
	attrs := waBinary.Attrs{"protocol": "1", "ab_key": p.ABKey, "hash": p.Hash, "refresh": p.Refresh}
	if p.ABKey == "" {
		attrs["ab_key"] = "wamock"
	}
	if p.Refresh == 0 {
		attrs["refresh"] = 86400
	}
	if p.RefreshID != 0 {
		attrs["refresh_id"] = p.RefreshID
	}
	if p.Delta {
		attrs["delta_update"] = "true"
	}
	codes := make([]int, 0, len(p.Props))
	for code := range p.Props {
		codes = append(codes, code)
	}
	sort.Ints(codes)
	props := make([]waBinary.Node, 0, len(codes))
	for _, code := range codes {
		props = append(props, waBinary.Node{Tag: "prop", Attrs: waBinary.Attrs{
			"config_code": code, "config_value": p.Props[code],
		}})
	}
	node := waBinary.Node{Tag: "props", Attrs: attrs}
	if len(props) > 0 {
		node.Content = props
	}
	return ResultIQ(iq, node)
}

// handleMediaConnIQ answers <iq xmlns="w:m"><media_conn/></iq> with one
// host; the client's media requests reach this server whatever the host.
func (s *Server) handleMediaConnIQ(iq *waBinary.Node) *waBinary.Node {
	if !hasChild(iq, "media_conn") {
		return ResultIQ(iq)
	}
	return ResultIQ(iq, waBinary.Node{Tag: "media_conn", Attrs: waBinary.Attrs{
		"auth": "wamock-auth", "ttl": 3600, "auth_ttl": 3600, "max_buckets": 12,
	}, Content: []waBinary.Node{{Tag: "host", Attrs: waBinary.Attrs{"hostname": DefaultMediaHost}}}})
}
