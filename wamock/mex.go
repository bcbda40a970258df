package wamock

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// MexHandler answers one MEX query (WhatsApp's GraphQL over an IQ): it is
// given the query's variables and returns what goes under "data". An error
// goes back in the response's "errors" list, as the real server reports a
// failed query, with the code of a *MexError or 500.
type MexHandler func(variables json.RawMessage) (data any, err error)

// MexError is a GraphQL error with the code the server puts in
// extensions.error_code.
type MexError struct {
	Code    int
	Message string
}

func (e *MexError) Error() string { return fmt.Sprintf("mex error %d: %s", e.Code, e.Message) }

// MexQuery is one MEX query a client sent.
type MexQuery struct {
	QueryID   string
	Variables json.RawMessage
}

// mexRoutes holds the MEX handlers by query id and what was asked.
type mexRoutes struct {
	mu       sync.Mutex
	handlers map[string]MexHandler
	received []MexQuery
}

// SetMexHandler answers MEX queries with the given query id. A nil h
// removes the handler; a query without one gets an IQ error 404, which
// whatsmeow returns as an error.
func (s *Server) SetMexHandler(queryID string, h MexHandler) {
	s.mex.mu.Lock()
	defer s.mex.mu.Unlock()
	if s.mex.handlers == nil {
		s.mex.handlers = make(map[string]MexHandler)
	}
	if h == nil {
		delete(s.mex.handlers, queryID)
		return
	}
	s.mex.handlers[queryID] = h
}

// MexQueries returns the MEX queries clients sent with the given query id,
// in order; an empty id returns all of them.
func (s *Server) MexQueries(queryID string) []MexQuery {
	s.mex.mu.Lock()
	defer s.mex.mu.Unlock()
	var out []MexQuery
	for _, q := range s.mex.received {
		if queryID == "" || q.QueryID == queryID {
			out = append(out, q)
		}
	}
	return out
}

// handleMexIQ answers
//
//	<iq xmlns="w:mex" type="get"><query query_id=…>{"variables":…}</query></iq>
//
// with <iq type="result"><result>{"data":…}</result></iq>, or with "errors"
// in the result when the handler fails.
func (s *Server) handleMexIQ(iq *waBinary.Node) *waBinary.Node {
	query, ok := iq.GetOptionalChildByTag("query")
	if !ok {
		return ErrorIQ(iq, 400, "bad-request")
	}
	queryID := strAttr(&query, "query_id")
	body, _ := query.Content.([]byte)
	var payload struct {
		Variables json.RawMessage `json:"variables"`
	}
	if err := json.Unmarshal(body, &payload); err != nil {
		return ErrorIQ(iq, 400, "bad-request")
	}
	s.mex.mu.Lock()
	s.mex.received = append(s.mex.received, MexQuery{QueryID: queryID, Variables: payload.Variables})
	h := s.mex.handlers[queryID]
	s.mex.mu.Unlock()
	if h == nil {
		return ErrorIQ(iq, 404, "item-not-found")
	}
	data, err := h(payload.Variables)
	var result any
	if err != nil {
		code := 500
		if me, ok := err.(*MexError); ok {
			code = me.Code
		}
		result = map[string]any{"data": nil, "errors": []any{map[string]any{
			"message":    err.Error(),
			"extensions": map[string]any{"error_code": code, "severity": "CRITICAL"},
		}}}
	} else {
		result = map[string]any{"data": data}
	}
	out, err := json.Marshal(result)
	if err != nil {
		return ErrorIQ(iq, 500, "internal-server-error")
	}
	return ResultIQ(iq, waBinary.Node{Tag: "result", Content: out})
}

// MexNotification builds a server-pushed MEX update, the way the server
// sends account-limit changes:
//
//	<notification type="mex" from="s.whatsapp.net" id=… t=…>
//	  <update op_name=…>{"data":{<key>:<body>}}</update>
//	</notification>
func MexNotification(opName, key string, body any) waBinary.Node {
	payload, _ := json.Marshal(map[string]any{"data": map[string]any{key: body}})
	return waBinary.Node{
		Tag: "notification",
		Attrs: waBinary.Attrs{
			"from": types.ServerJID,
			"type": "mex",
			"id":   newStanzaID(),
			"t":    time.Now().Unix(),
		},
		Content: []waBinary.Node{{
			Tag:     "update",
			Attrs:   waBinary.Attrs{"op_name": opName},
			Content: payload,
		}},
	}
}
