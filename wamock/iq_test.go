package wamock

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// sendIQ sends a raw IQ through the client's exported internals and waits
// for the reply, the way a plugin has to.
func sendIQ(t *testing.T, cli *whatsmeow.Client, xmlns, typ string, content []waBinary.Node) *waBinary.Node {
	t.Helper()
	//lint:ignore SA1019 whatsmeow 2025-12 exports no other way to send an arbitrary IQ, which is what this test checks the fake against.
	in := cli.DangerousInternals()
	id := in.GenerateRequestID()
	ch := in.WaitResponse(id)
	err := in.SendNode(context.Background(), waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{
		"id": id, "xmlns": xmlns, "type": typ, "to": types.ServerJID,
	}, Content: content})
	if err != nil {
		in.CancelResponse(id, ch)
		t.Fatalf("send %s IQ: %v", xmlns, err)
	}
	select {
	case resp := <-ch:
		return resp
	case <-time.After(5 * time.Second):
		in.CancelResponse(id, ch)
		t.Fatalf("no reply to %s IQ", xmlns)
		return nil
	}
}

func TestPrivacyIQ(t *testing.T) {
	srv := NewServer(t)
	cli := srv.QuickClient(t)
	alice := srv.AddContact(ContactOptions{})
	issue := []waBinary.Node{{Tag: "tokens", Content: []waBinary.Node{{
		Tag: "token", Attrs: waBinary.Attrs{"jid": alice.LID(), "t": int64(1700000000), "type": "trusted_contact"},
	}}}}

	// Default: an empty result.
	resp := sendIQ(t, cli, "privacy", "set", issue)
	if strAttr(resp, "type") != "result" || len(resp.GetChildren()) != 0 {
		t.Fatalf("default reply: %s", XML(resp))
	}
	got := ParseIssuedTokens(srv.PrivacyIQs()[0])
	if len(got) != 1 || got[0].JID != alice.LID() || got[0].T != 1700000000 || got[0].Type != "trusted_contact" {
		t.Fatalf("parsed issued tokens: %+v", got)
	}

	// A handler that returns token bytes.
	srv.SetPrivacyHandler(func(iq *waBinary.Node) *waBinary.Node {
		return TokenReply(iq, 1700000001, map[types.JID][]byte{alice.LID(): []byte("issued")})
	})
	resp = sendIQ(t, cli, "privacy", "set", issue)
	tok := resp.GetChildByTag("tokens", "token")
	if content, _ := tok.Content.([]byte); string(content) != "issued" || jidAttr(&tok, "jid") != alice.LID() {
		t.Fatalf("token reply: %s", XML(resp))
	}

	// A handler that fails.
	srv.SetPrivacyHandler(func(iq *waBinary.Node) *waBinary.Node { return ErrorIQ(iq, 500, "internal-server-error") })
	resp = sendIQ(t, cli, "privacy", "set", issue)
	if strAttr(resp, "type") != "error" || strAttr(&resp.GetChildren()[0], "code") != "500" {
		t.Fatalf("error reply: %s", XML(resp))
	}
}

func TestABPropsIQ(t *testing.T) {
	srv := NewServer(t)
	cli := srv.QuickClient(t)
	query := []waBinary.Node{{Tag: "props", Attrs: waBinary.Attrs{"protocol": "1", "hash": "old"}}}

	srv.SetABProps(ABProps{Hash: "h1", Refresh: 600, Delta: true, Props: map[int]string{865: "3600", 909: "3"}})
	resp := sendIQ(t, cli, "abt", "get", query)
	props := resp.GetChildByTag("props")
	if strAttr(&props, "hash") != "h1" || strAttr(&props, "refresh") != "600" || strAttr(&props, "delta_update") != "true" {
		t.Fatalf("props attrs: %s", XML(resp))
	}
	children := props.GetChildren()
	if len(children) != 2 || strAttr(&children[0], "config_code") != "865" || strAttr(&children[0], "config_value") != "3600" {
		t.Fatalf("props: %s", XML(resp))
	}
	if iqs := srv.ABPropsIQs(); len(iqs) != 1 || strAttr(&iqs[0].GetChildren()[0], "hash") != "old" {
		t.Fatalf("recorded abt IQs: %v", iqs)
	}

	srv.SetABPropsError(&ABPropsError{Code: 503, Text: "service-unavailable"})
	resp = sendIQ(t, cli, "abt", "get", query)
	if strAttr(resp, "type") != "error" {
		t.Fatalf("error reply: %s", XML(resp))
	}

	// Unknown IQs get an empty result.
	resp = sendIQ(t, cli, "w:something:new", "get", nil)
	if strAttr(resp, "type") != "result" {
		t.Fatalf("unknown IQ reply: %s", XML(resp))
	}
}

func TestPushPrivacyToken(t *testing.T) {
	srv := NewServer(t)
	cli := srv.QuickClient(t)
	alice := srv.AddContact(ContactOptions{})
	ctx := context.Background()

	// A recent t: newer whatsmeow versions attach only tokens from the last
	// four weeks.
	if err := srv.PushPrivacyToken(alice.LID(), types.EmptyJID, srv.OwnLID(), []byte("alice-token"), time.Now().Unix()); err != nil {
		t.Fatal(err)
	}
	// whatsmeow acks the notification after storing the token.
	srv.WaitFor(t, "notification ack", func(n *waBinary.Node) bool {
		return n.Tag == "ack" && strAttr(n, "class") == "notification"
	}, 2*time.Second)
	var tok []byte
	waitUntil(t, "token stored", func() bool {
		stored, err := cli.Store.PrivacyTokens.GetPrivacyToken(ctx, alice.LID())
		if err != nil || stored == nil {
			return false
		}
		tok = stored.Token
		return true
	})
	if string(tok) != "alice-token" {
		t.Fatalf("stored token %q", tok)
	}

	// And whatsmeow attaches it to the next message to that LID.
	srv.SetMessageRule(RequireToken())
	if _, err := cli.SendMessage(ctx, alice.LID(), textMessage("with stored token")); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	msg := srv.MessagesTo(alice.LID())[0]
	if string(MessageToken(msg)) != "alice-token" {
		t.Fatalf("message tctoken %q", MessageToken(msg))
	}

	// Push with no device of ours known reports it (with devices known but
	// offline it queues: TestPushQueuesForOfflineDevice).
	if err := NewServer(t).Push(waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{"type": "test"}}); err != ErrNotConnected {
		t.Fatalf("Push without clients: %v", err)
	}
}

func TestWaitForSemantics(t *testing.T) {
	srv := NewServer(t)
	cli := srv.QuickClient(t)
	sendIQ(t, cli, "test:a", "get", nil)
	sendIQ(t, cli, "test:a", "get", nil)
	first := srv.WaitFor(t, "first test:a", IsIQ("test:a", ""), time.Second)
	second := srv.WaitFor(t, "second test:a", IsIQ("test:a", ""), time.Second)
	if first == second {
		t.Fatal("WaitFor returned the same stanza twice")
	}
	if _, ok := srv.TryWaitFor(0, IsIQ("test:a", ""), 50*time.Millisecond); ok {
		t.Fatal("a third test:a IQ was found")
	}
	mark := srv.Mark()
	sendIQ(t, cli, "test:b", "get", nil)
	if got := srv.Since(mark); len(got) != 1 || strAttr(got[0], "xmlns") != "test:b" {
		t.Fatalf("Since(mark) = %v", got)
	}
	if dev, ok := srv.ReceivedFrom(first); !ok || dev != cli.Store.ID.Device {
		t.Fatalf("ReceivedFrom = %d, %v", dev, ok)
	}
}

func TestCustomIQHandlerAndProfilePicture(t *testing.T) {
	srv := NewServer(t)
	cli := srv.QuickClient(t)
	alice := srv.AddContact(ContactOptions{})
	ctx := context.Background()
	if _, err := cli.GetProfilePictureInfo(ctx, alice.LID(), nil); !errors.Is(err, whatsmeow.ErrProfilePictureNotSet) {
		t.Fatalf("default profile picture: %v", err)
	}
	srv.SetIQHandler("w:profile:picture", func(iq *waBinary.Node) *waBinary.Node {
		return ResultIQ(iq, waBinary.Node{Tag: "picture", Attrs: waBinary.Attrs{
			"id": "1", "url": "https://example.com/p.jpg", "type": "image", "direct_path": "/p.jpg",
		}})
	})
	info, err := cli.GetProfilePictureInfo(ctx, alice.LID(), nil)
	if err != nil || info.ID != "1" {
		t.Fatalf("custom profile picture: %+v, %v", info, err)
	}
	if srv.Contact(alice.PN()) != alice || srv.Contact(alice.LID()) != alice {
		t.Fatal("Contact lookup")
	}
}
