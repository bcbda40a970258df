package wamock_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"go.mau.fi/whatsmeow"

	"github.com/tctoken/tctoken/wamock"
)

// A MEX query from the real client reaches its handler with its variables,
// and the handler's data or error comes back through whatsmeow.
func TestMexQueryRoundTrip(t *testing.T) {
	srv := wamock.NewServer(t)
	cli := srv.QuickClient(t)
	srv.SetMexHandler("123", func(vars json.RawMessage) (any, error) {
		var v struct{ Who string }
		if err := json.Unmarshal(vars, &v); err != nil {
			return nil, err
		}
		if v.Who == "nobody" {
			return nil, &wamock.MexError{Code: 404, Message: "no such user"}
		}
		return map[string]any{"hello": v.Who}, nil
	})
	ctx := context.Background()
	//lint:ignore SA1019 the test speaks MEX the way whatsmeow's own queries do
	data, err := cli.DangerousInternals().SendMexIQ(ctx, "123", map[string]any{"Who": "alice"})
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	var got struct{ Hello string }
	if err := json.Unmarshal(data, &got); err != nil || got.Hello != "alice" {
		t.Fatalf("data = %s (%v), want hello alice", data, err)
	}
	//lint:ignore SA1019 as above
	if _, err := cli.DangerousInternals().SendMexIQ(ctx, "123", map[string]any{"Who": "nobody"}); err == nil {
		t.Fatal("a failing handler returned no error")
	}
	//lint:ignore SA1019 as above
	if _, err := cli.DangerousInternals().SendMexIQ(ctx, "999", map[string]any{}); !errors.Is(err, whatsmeow.ErrIQNotFound) {
		t.Fatalf("unknown query id: %v, want ErrIQNotFound", err)
	}
	if n := len(srv.MexQueries("123")); n != 2 {
		t.Fatalf("recorded %d queries for 123, want 2", n)
	}
}
