package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// MEX is WhatsApp's GraphQL over an IQ:
//
//	<iq xmlns="w:mex" type="get"><query query_id=…>{"variables":…}</query></iq>
//
// answered with <result>{"data":…,"errors":[…]}</result>. The plugin sends
// two such queries, the reach-out timelock and the new-chat cap, both
// through queryMex, which tells the server refusing a query (an error IQ,
// or GraphQL errors in the result) from a query that got no answer or one
// it cannot read.
//
// queryMex sends the IQ through the plugin's own sendIQ, not through
// whatsmeow's MEX sender (DangerousInternals().SendMexIQ, the same in
// whatsmeow 2025-12 and 33cfac51): that one reads the device's ID to pick a
// newsletter query's desktop id, unsynchronized with a logout clearing it,
// which the race detector reports when a logout comes while a query runs
// (the timelock's, at connect). It also resends the query after a
// reconnect; the plugin's schedules retry a failed query themselves. The
// errors are whatsmeow's types all the same (*whatsmeow.IQError,
// types.GraphQLErrors, whatsmeow.ErrIQTimedOut), so that callers match
// them as they would whatsmeow's.

// mexQueryTimeout bounds one query: a query runs in the background, where
// a server that does not answer must not hold its slot for long.
const mexQueryTimeout = defaultIQTimeout

// errMexAnswer marks an answer that is not a MEX result at all: no
// <result>, or no JSON in it. An answer whose data lacks what the caller
// reads is the caller's own error.
var errMexAnswer = errors.New("malformed MEX answer")

// mexRefusal is the server refusing a query: with an error IQ, or with
// GraphQL errors in its result. A refused query id is what makes the
// new-chat cap try its older id. It unwraps to an *IQError with the code
// and text (so that the refusal reads like any other IQ the server
// refused) and to whatsmeow's own error.
type mexRefusal struct {
	QueryID string
	// GraphQL is true when the refusal came as GraphQL errors in a
	// result, false for an error IQ.
	GraphQL bool
	// Code and Text are the error IQ's, or the first GraphQL error's code
	// and message.
	Code int
	Text string
	// Data is what a result carried beside its GraphQL errors, for a
	// caller that reads a partial answer; null or empty when there is none.
	Data  json.RawMessage
	cause error
}

func (r *mexRefusal) Error() string {
	if r.GraphQL {
		return fmt.Sprintf("mex query %s: the server answered with a GraphQL error: %v", r.QueryID, r.cause)
	}
	return fmt.Sprintf("mex query %s: the server refused the IQ: %v", r.QueryID, r.cause)
}

func (r *mexRefusal) Unwrap() []error {
	return []error{&IQError{Code: r.Code, Text: r.Text}, r.cause}
}

// queryMex sends one MEX query and returns the "data" of its answer. A
// server that refuses it gives a *mexRefusal; no answer in time, the
// connection gone (ErrDisconnected) and an answer that is not a MEX result
// (errMexAnswer) are errors that say so. Every error names the query id.
func (c *Core) queryMex(ctx context.Context, queryID string, variables any) (json.RawMessage, error) {
	payload, err := json.Marshal(map[string]any{"variables": variables})
	if err != nil {
		return nil, fmt.Errorf("mex query %s: encode the variables: %w", queryID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, mexQueryTimeout)
	defer cancel()
	// How long the query was given, for the error: the caller's deadline
	// when that is sooner.
	deadline, _ := ctx.Deadline()
	bound := max(time.Until(deadline).Round(time.Second), 0)
	reply, err := sendIQ(ctx, c.cli, "w:mex", "get", waBinary.Node{
		Tag: "query", Attrs: waBinary.Attrs{"query_id": queryID}, Content: payload,
	})
	if err != nil {
		return nil, mexError(queryID, bound, err)
	}
	return readMexReply(queryID, reply)
}

// readMexReply reads the answer to a MEX query: its data, or the server's
// refusal, or errMexAnswer for anything else.
func readMexReply(queryID string, node *waBinary.Node) (json.RawMessage, error) {
	if node == nil || node.Tag != "iq" {
		return nil, fmt.Errorf("mex query %s: %w: expected <iq>, got %s", queryID, errMexAnswer, describeTag(node))
	}
	switch typ, _ := node.Attrs["type"].(string); typ {
	case "result":
	case "error":
		iqErr := whatsmeowIQError(node)
		return nil, &mexRefusal{QueryID: queryID, Code: iqErr.Code, Text: iqErr.Text, cause: iqErr}
	default:
		return nil, fmt.Errorf("mex query %s: %w: unexpected iq type %q", queryID, errMexAnswer, typ)
	}
	result, ok := node.GetOptionalChildByTag("result")
	if !ok {
		return nil, fmt.Errorf("mex query %s: %w: no <result> in the reply", queryID, errMexAnswer)
	}
	body, ok := result.Content.([]byte)
	if !ok {
		return nil, fmt.Errorf("mex query %s: %w: <result> holds %T, not JSON", queryID, errMexAnswer, result.Content)
	}
	var resp types.GraphQLResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("mex query %s: %w: %w", queryID, errMexAnswer, err)
	}
	if len(resp.Errors) > 0 {
		first := resp.Errors[0]
		return nil, &mexRefusal{QueryID: queryID, GraphQL: true, Code: first.Extensions.ErrorCode, Text: first.Message, Data: resp.Data, cause: resp.Errors}
	}
	return resp.Data, nil
}

// mexError says which way sending a query or waiting for its answer
// failed, keeping the cause wrapped. bound is how long the query was
// given.
func mexError(queryID string, bound time.Duration, err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, whatsmeow.ErrIQTimedOut):
		return fmt.Errorf("mex query %s: no answer within %s: %w", queryID, bound, err)
	case errors.Is(err, ErrDisconnected):
		return fmt.Errorf("mex query %s: the connection dropped: %w", queryID, err)
	}
	return fmt.Errorf("mex query %s: %w", queryID, err)
}
