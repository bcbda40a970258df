package hooks

import (
	"errors"
	"fmt"
	"strconv"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

const (
	// maxTokensPerIQ bounds one privacy IQ. WhatsApp Web batches issuance
	// per chat; nothing says how many the server takes, so stay modest.
	maxTokensPerIQ = 100
	// MaxTokenSize rejects tokens no real server sends (they are tens of
	// bytes), so that a bad stanza cannot fill the database.
	MaxTokenSize = 1024

	tokenTypeTrustedContact = "trusted_contact"
)

// issueRecipient is one contact to issue our token to, at timestamp T. A reissue
// after an identity change keeps the original T to keep the bucket window.
type issueRecipient struct {
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

// buildIssueTokens builds the <tokens> child of a privacy IQ.
func buildIssueTokens(targets []issueRecipient) waBinary.Node {
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

// chunkTargets splits targets into groups of at most MaxTokensPerIQ.
func chunkTargets(targets []issueRecipient) [][]issueRecipient {
	var chunks [][]issueRecipient
	for len(targets) > maxTokensPerIQ {
		chunks = append(chunks, targets[:maxTokensPerIQ])
		targets = targets[maxTokensPerIQ:]
	}
	if len(targets) > 0 {
		chunks = append(chunks, targets)
	}
	return chunks
}

// checkIQResult turns an <iq type="error"> into an *IQError and anything that
// is not an IQ result into malformed, the sentinel that names the request.
func checkIQResult(node *waBinary.Node, malformed error) error {
	if node == nil || node.Tag != "iq" {
		return fmt.Errorf("%w: expected <iq>, got %s", malformed, describeTag(node))
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
		return fmt.Errorf("%w: unexpected iq type %q", malformed, typ)
	}
}

// parseIssueReply reads the reply to a privacy IQ. An error means the IQ
// failed as a whole (an error reply, or not a result at all). The real
// server's result usually carries no tokens; when it does, they are tokens
// the contacts issued to us. Tokens with an error attribute are contacts the
// server refused. A token that cannot be used is skipped and described in
// problems, so that one bad token never loses what the server accepted.
func parseIssueReply(node *waBinary.Node) (received []ReceivedToken, refused []types.JID, problems []error, err error) {
	if err = checkIQResult(node, ErrMalformedReply); err != nil {
		return nil, nil, nil, err
	}
	tokens, ok := node.GetOptionalChildByTag("tokens")
	if !ok {
		return nil, nil, nil, nil
	}
	for i, child := range tokens.GetChildren() {
		token, refusedJID, problem := parseReplyToken(i+1, child)
		switch {
		case problem != nil:
			problems = append(problems, problem)
		case !refusedJID.IsEmpty():
			refused = append(refused, refusedJID)
		case token != nil:
			received = append(received, *token)
		}
	}
	return received, refused, problems, nil
}

// parseReplyToken reads the n-th child of a reply's <tokens>.
func parseReplyToken(n int, child waBinary.Node) (token *ReceivedToken, refused types.JID, problem error) {
	if child.Tag != "token" {
		return nil, types.EmptyJID, fmt.Errorf("%w: child #%d is <%s>, not <token>", ErrMalformedReply, n, child.Tag)
	}
	ag := child.AttrGetter()
	jid := ag.JID("jid")
	if !ag.OK() {
		return nil, types.EmptyJID, fmt.Errorf("%w: token #%d has no jid: %v", ErrMalformedReply, n, ag.Error())
	}
	if _, hasError := child.Attrs["error"]; hasError {
		return nil, jid.ToNonAD(), nil
	}
	content, isBytes := child.Content.([]byte)
	if !isBytes || len(content) == 0 {
		// An echo of what we issued, without bytes, is how an accepted
		// contact looks in some replies.
		return nil, types.EmptyJID, nil
	}
	if typ := ag.OptionalString("type"); typ != "" && typ != tokenTypeTrustedContact {
		return nil, types.EmptyJID, nil
	}
	ts := ag.Int64("t")
	if !ag.OK() {
		return nil, types.EmptyJID, fmt.Errorf("%w: token #%d for %s has a bad timestamp: %v", ErrMalformedReply, n, jid, ag.Error())
	}
	if len(content) > MaxTokenSize {
		return nil, types.EmptyJID, fmt.Errorf("%w: token #%d for %s is %d bytes, over the %d-byte limit", ErrMalformedReply, n, jid, len(content), MaxTokenSize)
	}
	return &ReceivedToken{JID: jid.ToNonAD(), Token: content, Timestamp: ts}, types.EmptyJID, nil
}

func describeTag(node *waBinary.Node) string {
	if node == nil {
		return "nothing"
	}
	return "<" + node.Tag + ">"
}
