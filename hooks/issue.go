package hooks

import (
	"errors"
	"fmt"
	"strconv"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

const (
	// MaxTokensPerIQ bounds one privacy IQ. WhatsApp Web batches issuance
	// per chat; nothing says how many the server takes, so stay modest.
	MaxTokensPerIQ = 100
	// MaxTokenSize rejects tokens no real server sends (they are tens of
	// bytes), so that a bad stanza cannot fill the database.
	MaxTokenSize = 1024

	tokenTypeTrustedContact = "trusted_contact"
)

// IssueTarget is one contact to issue our token to, at timestamp T. A reissue
// after an identity change keeps the original T to keep the bucket window.
type IssueTarget struct {
	JID types.JID
	T   int64
}

// ReceivedToken is a token a contact issued to us.
type ReceivedToken struct {
	JID       types.JID
	Token     []byte
	Timestamp int64
}

// ErrMalformedReply means the server's answer did not have the expected shape.
var ErrMalformedReply = errors.New("malformed privacy token reply")

// IQError is an error reply to an IQ, with the server's code and text.
type IQError struct {
	Code int
	Text string
}

func (e *IQError) Error() string {
	if e.Text == "" {
		return fmt.Sprintf("server returned IQ error %d", e.Code)
	}
	return fmt.Sprintf("server returned IQ error %d: %s", e.Code, e.Text)
}

// BuildIssueTokens builds the <tokens> child of a privacy IQ.
func BuildIssueTokens(targets []IssueTarget) waBinary.Node {
	children := make([]waBinary.Node, len(targets))
	for i, target := range targets {
		children[i] = waBinary.Node{
			Tag: "token",
			Attrs: waBinary.Attrs{
				"jid":  target.JID.ToNonAD(),
				"t":    strconv.FormatInt(target.T, 10),
				"type": tokenTypeTrustedContact,
			},
		}
	}
	return waBinary.Node{Tag: "tokens", Content: children}
}

// ChunkTargets splits targets into groups of at most MaxTokensPerIQ.
func ChunkTargets(targets []IssueTarget) [][]IssueTarget {
	var chunks [][]IssueTarget
	for len(targets) > MaxTokensPerIQ {
		chunks = append(chunks, targets[:MaxTokensPerIQ])
		targets = targets[MaxTokensPerIQ:]
	}
	if len(targets) > 0 {
		chunks = append(chunks, targets)
	}
	return chunks
}

// CheckIQResult turns an <iq type="error"> into an *IQError and anything that
// is not an IQ result into ErrMalformedReply.
func CheckIQResult(node *waBinary.Node) error {
	if node == nil || node.Tag != "iq" {
		return fmt.Errorf("%w: expected <iq>, got %s", ErrMalformedReply, describeTag(node))
	}
	switch typ, _ := node.Attrs["type"].(string); typ {
	case "result":
		return nil
	case "error":
		iqErr := &IQError{}
		if errNode, ok := node.GetOptionalChildByTag("error"); ok {
			ag := errNode.AttrGetter()
			iqErr.Code = ag.OptionalInt("code")
			iqErr.Text = ag.OptionalString("text")
		}
		return iqErr
	default:
		return fmt.Errorf("%w: unexpected iq type %q", ErrMalformedReply, typ)
	}
}

// ParseIssueReply reads the reply to a privacy IQ. The real server's reply
// usually carries no tokens; when it does, they are tokens the contacts issued
// to us. Tokens with an error attribute are contacts the server refused.
func ParseIssueReply(node *waBinary.Node) (received []ReceivedToken, refused []types.JID, err error) {
	if err = CheckIQResult(node); err != nil {
		return nil, nil, err
	}
	tokens, ok := node.GetOptionalChildByTag("tokens")
	if !ok {
		return nil, nil, nil
	}
	for i, child := range tokens.GetChildren() {
		if child.Tag != "token" {
			return nil, nil, fmt.Errorf("%w: child #%d is <%s>, not <token>", ErrMalformedReply, i+1, child.Tag)
		}
		ag := child.AttrGetter()
		jid := ag.JID("jid")
		if !ag.OK() {
			return nil, nil, fmt.Errorf("%w: token #%d has no jid: %v", ErrMalformedReply, i+1, ag.Error())
		}
		if _, hasError := child.Attrs["error"]; hasError {
			refused = append(refused, jid.ToNonAD())
			continue
		}
		content, isBytes := child.Content.([]byte)
		if !isBytes || len(content) == 0 {
			// An echo of what we issued, without bytes, is how an accepted
			// contact looks in some replies.
			continue
		}
		if typ := ag.OptionalString("type"); typ != "" && typ != tokenTypeTrustedContact {
			continue
		}
		ts := ag.Int64("t")
		if !ag.OK() {
			return nil, nil, fmt.Errorf("%w: token #%d for %s has a bad timestamp: %v", ErrMalformedReply, i+1, jid, ag.Error())
		}
		if len(content) > MaxTokenSize {
			return nil, nil, fmt.Errorf("%w: token #%d for %s is %d bytes, over the %d-byte limit", ErrMalformedReply, i+1, jid, len(content), MaxTokenSize)
		}
		received = append(received, ReceivedToken{JID: jid.ToNonAD(), Token: content, Timestamp: ts})
	}
	return received, refused, nil
}

func describeTag(node *waBinary.Node) string {
	if node == nil {
		return "nothing"
	}
	return "<" + node.Tag + ">"
}
