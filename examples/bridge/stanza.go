package main

import (
	"fmt"
	"strings"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken"
)

// Helpers that read and describe stanzas. Token bytes never leave here
// except as short hashes.

// attr is an attribute as text (JIDs and numbers included), "" if absent.
func attr(node *waBinary.Node, key string) string {
	if node == nil {
		return ""
	}
	switch v := node.Attrs[key].(type) {
	case nil:
		return ""
	case string:
		return v
	case types.JID:
		return v.String()
	default:
		return fmt.Sprint(v)
	}
}

// childBytes returns the content of a direct child, or nil.
func childBytes(node *waBinary.Node, tag string) []byte {
	if node == nil {
		return nil
	}
	child, ok := node.GetOptionalChildByTag(tag)
	if !ok {
		return nil
	}
	content, _ := child.Content.([]byte)
	return content
}

// hasChild reports whether node has a direct child with the tag.
func hasChild(node *waBinary.Node, tag string) bool {
	if node == nil {
		return false
	}
	_, ok := node.GetOptionalChildByTag(tag)
	return ok
}

// issuedToken is one <token> of a privacy IQ that issues our token.
type issuedToken struct {
	JID  types.JID
	T    string
	Type string
}

// issuedTokens reads <iq xmlns="privacy" type="set"><tokens><token …/>.
func issuedTokens(node *waBinary.Node) []issuedToken {
	if node == nil || node.Tag != "iq" || attr(node, "xmlns") != "privacy" || attr(node, "type") != "set" {
		return nil
	}
	tokens, ok := node.GetOptionalChildByTag("tokens")
	if !ok {
		return nil
	}
	var out []issuedToken
	for _, tok := range tokens.GetChildren() {
		if tok.Tag != "token" {
			continue
		}
		jid, _ := tok.Attrs["jid"].(types.JID)
		out = append(out, issuedToken{JID: jid, T: attr(&tok, "t"), Type: attr(&tok, "type")})
	}
	return out
}

// issuanceFor returns the <token> of a privacy IQ that names one of jids.
func issuanceFor(node *waBinary.Node, jids ...types.JID) (issuedToken, bool) {
	for _, tok := range issuedTokens(node) {
		for _, jid := range jids {
			if !jid.IsEmpty() && tok.JID.ToNonAD() == jid.ToNonAD() {
				return tok, true
			}
		}
	}
	return issuedToken{}, false
}

// describe renders one stanza for the demo: its tag and the attributes
// that matter, then the token it carries, as a short hash.
func describe(node *waBinary.Node) string {
	if node == nil {
		return "(none)"
	}
	var sb strings.Builder
	sb.WriteString("<" + node.Tag)
	for _, key := range []string{"xmlns", "type", "class", "from", "to", "id", "error"} {
		if v := attr(node, key); v != "" {
			fmt.Fprintf(&sb, " %s=%s", key, v)
		}
	}
	sb.WriteString(">")
	switch node.Tag {
	case "message":
		sb.WriteString(" " + describeMessageToken(node))
	case "iq":
		for _, tok := range issuedTokens(node) {
			fmt.Fprintf(&sb, " <token jid=%s t=%s type=%s/>", tok.JID, tok.T, tok.Type)
		}
	case "notification":
		// A privacy_token notification: the contact's token for us.
		tokens, _ := node.GetOptionalChildByTag("tokens")
		for _, tok := range tokens.GetChildren() {
			content, _ := tok.Content.([]byte)
			fmt.Fprintf(&sb, " <token jid=%s t=%s type=%s> %d bytes, sha256 %s", attr(&tok, "jid"), attr(&tok, "t"), attr(&tok, "type"), len(content), tctoken.ShortHash(content))
		}
	}
	return sb.String()
}

func describeMessageToken(node *waBinary.Node) string {
	var parts []string
	for _, tag := range []string{"tctoken", "cstoken"} {
		if hasChild(node, tag) {
			content := childBytes(node, tag)
			parts = append(parts, fmt.Sprintf("<%s> %d bytes, sha256 %s", tag, len(content), tctoken.ShortHash(content)))
		}
	}
	if len(parts) == 0 {
		return "(no token child)"
	}
	return strings.Join(parts, " + ")
}
