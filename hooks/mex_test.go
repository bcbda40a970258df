package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/wamock"
)

// TestQueryMex: a real client asks wamock. The data comes back as sent; the
// server's refusals, an error IQ and GraphQL errors, are a *mexRefusal with
// the code and text, and an *IQError to anyone who asks for one, and GraphQL
// errors keep the data they came with; an answer that is not a MEX result,
// a client that is not connected and a query given up before the answer
// each say so. Every error names the query id.
func TestQueryMex(t *testing.T) {
	srv := wamock.NewServer(t)
	cli := srv.QuickClient(t)
	c := &Core{cli: cli}
	ctx := context.Background()
	vars := map[string]any{"input": map[string]any{"type": "T"}}

	srv.SetMexHandler("1", func(variables json.RawMessage) (any, error) {
		return map[string]any{"echo": variables}, nil
	})
	data, err := c.queryMex(ctx, "1", vars)
	if err != nil || string(data) != `{"echo":{"input":{"type":"T"}}}` {
		t.Fatalf("answered: %s, %v", data, err)
	}

	for _, tc := range []struct {
		name    string
		queryID string
		handler wamock.MexHandler
		graphQL bool
		code    int
		text    string
		data    string
		says    string
	}{
		{name: "error IQ", queryID: "2", code: 404, text: "item-not-found", says: "the server refused the IQ"},
		{name: "GraphQL error", queryID: "3", handler: func(json.RawMessage) (any, error) {
			return nil, &wamock.MexError{Code: 500, Message: "backend down"}
		}, graphQL: true, code: 500, text: "mex error 500: backend down", data: "null", says: "the server answered with a GraphQL error"},
	} {
		srv.SetMexHandler(tc.queryID, tc.handler)
		_, err := c.queryMex(ctx, tc.queryID, vars)
		var refusal *mexRefusal
		var iqErr *IQError
		if !errors.As(err, &refusal) || refusal.GraphQL != tc.graphQL || refusal.Code != tc.code || refusal.Text != tc.text ||
			string(refusal.Data) != tc.data || refusal.QueryID != tc.queryID {
			t.Errorf("%s: %#v (%v)", tc.name, refusal, err)
			continue
		}
		if !errors.As(err, &iqErr) || iqErr.Code != tc.code || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), tc.queryID) {
			t.Errorf("%s: %v, want an *IQError %d and %q with the query id", tc.name, err, tc.code, tc.says)
		}
	}

	// GraphQL errors beside data: the refusal keeps the data.
	srv.SetIQHandler("w:mex", func(iq *waBinary.Node) *waBinary.Node {
		return &waBinary.Node{Content: []waBinary.Node{{Tag: "result",
			Content: []byte(`{"data":{"field":{"a":1}},"errors":[{"message":"partial","extensions":{"error_code":206}}]}`)}}}
	})
	_, err = c.queryMex(ctx, "4", vars)
	var refusal *mexRefusal
	if !errors.As(err, &refusal) || !refusal.GraphQL || refusal.Code != 206 || string(refusal.Data) != `{"field":{"a":1}}` {
		t.Errorf("GraphQL errors beside data: %#v (%v)", refusal, err)
	}

	for _, tc := range []struct {
		name  string
		reply *waBinary.Node
	}{
		{"no <result>", &waBinary.Node{}},
		{"not JSON", &waBinary.Node{Content: []waBinary.Node{{Tag: "result", Content: []byte("<html>")}}}},
		{"neither result nor error", &waBinary.Node{Attrs: waBinary.Attrs{"type": "set"}}},
	} {
		srv.SetIQHandler("w:mex", func(iq *waBinary.Node) *waBinary.Node { return tc.reply })
		_, err := c.queryMex(ctx, "5", vars)
		if !errors.Is(err, errMexAnswer) || errors.As(err, &refusal) || !strings.Contains(err.Error(), "mex query 5") {
			t.Errorf("%s: %v, want errMexAnswer and no refusal", tc.name, err)
		}
	}

	other := srv.QuickClient(t)
	other.Disconnect()
	_, err = (&Core{cli: other}).queryMex(ctx, "7", vars)
	if !errors.Is(err, ErrDisconnected) || !errors.Is(err, whatsmeow.ErrNotConnected) || !strings.Contains(err.Error(), "the connection dropped") {
		t.Errorf("not connected: %v", err)
	}

	// The server holds its answer until the query was given up.
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv.SetIQHandler("w:mex", func(iq *waBinary.Node) *waBinary.Node {
		<-release
		return nil
	})
	deadline, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = c.queryMex(deadline, "6", vars)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within") || errors.As(err, &refusal) {
		t.Errorf("given up: %v", err)
	}

}

// TestMexError: the ways a query gets no answer, including whatsmeow's own
// timeout, which wamock cannot provoke without a wait.
func TestMexError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		says string
		is   error
	}{
		{whatsmeow.ErrIQTimedOut, "no answer within 30s", whatsmeow.ErrIQTimedOut},
		{fmt.Errorf("w:mex iq: %w", context.DeadlineExceeded), "no answer within 30s", context.DeadlineExceeded},
		{fmt.Errorf("w:mex iq: %w", ErrDisconnected), "the connection dropped", ErrDisconnected},
		{fmt.Errorf("send w:mex iq: %w: %w", ErrDisconnected, whatsmeow.ErrNotConnected), "the connection dropped", whatsmeow.ErrNotConnected},
		{context.Canceled, "mex query 9: context canceled", context.Canceled},
	} {
		got := mexError("9", mexQueryTimeout, tc.err)
		var refusal *mexRefusal
		if errors.As(got, &refusal) || !strings.Contains(got.Error(), tc.says) || !strings.Contains(got.Error(), "mex query 9") ||
			!errors.Is(got, tc.err) || !errors.Is(got, tc.is) {
			t.Errorf("%v: %v, want %q and the cause wrapped", tc.err, got, tc.says)
		}
	}
}

// TestReadMexReply: the replies wamock does not send, read as the ones it
// does: an error IQ without an <error> child is still a refusal, and the
// refusals unwrap to whatsmeow's error types.
func TestReadMexReply(t *testing.T) {
	result := func(body string) *waBinary.Node {
		return &waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"type": "result"}, Content: []waBinary.Node{{Tag: "result", Content: []byte(body)}}}
	}
	data, err := readMexReply("9", result(`{"data":{"a":1}}`))
	if err != nil || string(data) != `{"a":1}` {
		t.Errorf("data: %s, %v", data, err)
	}
	var refusal *mexRefusal
	var iqErr *whatsmeow.IQError
	_, err = readMexReply("9", &waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"type": "error"}})
	if !errors.As(err, &refusal) || refusal.GraphQL || refusal.Code != 0 || !errors.As(err, &iqErr) {
		t.Errorf("error IQ without <error>: %v", err)
	}
	_, err = readMexReply("9", &waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"type": "error"},
		Content: []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": "429", "text": "rate-overlimit"}}}})
	if !errors.As(err, &refusal) || refusal.Code != 429 || refusal.Text != "rate-overlimit" || !errors.Is(err, whatsmeow.ErrIQRateOverLimit) {
		t.Errorf("error IQ: %v", err)
	}
	var gql types.GraphQLErrors
	_, err = readMexReply("9", result(`{"data":null,"errors":[{"message":"unknown doc","extensions":{"error_code":404}}]}`))
	if !errors.As(err, &refusal) || !refusal.GraphQL || refusal.Code != 404 || refusal.Text != "unknown doc" || !errors.As(err, &gql) {
		t.Errorf("GraphQL error: %v", err)
	}
	for _, node := range []*waBinary.Node{
		nil,
		{Tag: "stream:error"},
		{Tag: "iq", Attrs: waBinary.Attrs{"type": "get"}},
		{Tag: "iq", Attrs: waBinary.Attrs{"type": "result"}},
		{Tag: "iq", Attrs: waBinary.Attrs{"type": "result"}, Content: []waBinary.Node{{Tag: "result", Content: []waBinary.Node{{Tag: "x"}}}}},
		result(`<html>`),
	} {
		if _, err := readMexReply("9", node); !errors.Is(err, errMexAnswer) || errors.As(err, &refusal) || !strings.Contains(err.Error(), "mex query 9") {
			t.Errorf("%v: %v, want errMexAnswer", node, err)
		}
	}
}
