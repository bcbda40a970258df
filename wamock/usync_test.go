package wamock_test

import (
	"context"
	"testing"

	"github.com/tctoken/tctoken/wamock"
)

// TestIsOnWhatsApp: a phone-number lookup (what a bridge does before it
// opens a DM with a number) finds a contact by its number, with the query
// echoed, and reports an unknown number as not on WhatsApp.
func TestIsOnWhatsApp(t *testing.T) {
	srv := wamock.NewServer(t)
	cli := srv.QuickClient(t)
	bob := srv.AddContact(wamock.ContactOptions{PN: "15551230001"})
	resp, err := cli.IsOnWhatsApp(context.Background(), []string{"+15551230001", "+15559999999"})
	if err != nil {
		t.Fatalf("IsOnWhatsApp: %v", err)
	}
	if len(resp) != 2 {
		t.Fatalf("IsOnWhatsApp returned %d answers, want 2: %+v", len(resp), resp)
	}
	for _, r := range resp {
		switch r.Query {
		case "+15551230001":
			if !r.IsIn || r.JID != bob.PN() {
				t.Errorf("bob's number: %+v, want IsIn with his PN", r)
			}
		case "+15559999999":
			if r.IsIn {
				t.Errorf("an unknown number is on WhatsApp: %+v", r)
			}
		default:
			t.Errorf("answer with query %q, want one of the numbers asked", r.Query)
		}
	}
}
