package wamock

import (
	"context"
	"crypto/cipher"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/util/keys"
	"google.golang.org/protobuf/proto"
)

func TestWrongCertRoot(t *testing.T) {
	srv := NewServer(t, WithWrongCertRoot())
	cli, _ := srv.QuickUnconnectedClient(t)
	cli.EnableAutoReconnect = false
	start := time.Now()
	err := cli.Connect()
	if err == nil {
		t.Fatal("Connect succeeded with a certificate from the wrong root")
	}
	if !strings.Contains(err.Error(), "verify server cert") {
		t.Fatalf("Connect error %q does not mention the certificate", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("Connect took %s to fail", time.Since(start))
	}
	waitUntil(t, "server reports the aborted handshake", func() bool { return len(srv.Errors()) > 0 })
	if cli.IsLoggedIn() {
		t.Fatal("client logged in")
	}
}

// dialRaw opens a websocket to the server like whatsmeow does, without the
// client on top.
func dialRaw(t *testing.T, srv *Server) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "wss://web.whatsapp.com/ws/chat", &websocket.DialOptions{HTTPClient: srv.HTTPClient()})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return ws
}

// expectClosed reads until the server closes the connection.
func expectClosed(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("server did not close the connection")
			}
			return
		}
	}
}

func TestGarbageHandshakeFrame(t *testing.T) {
	srv := NewServer(t)
	ws := dialRaw(t, srv)
	frame := append(append([]byte{}, waPrologue...), 0, 0, 5, 0xde, 0xad, 0xbe, 0xef, 0xff)
	if err := ws.Write(context.Background(), websocket.MessageBinary, frame); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, ws)
	waitUntil(t, "error recorded", func() bool { return len(srv.Errors()) == 1 })
	if msg := srv.Errors()[0].Error(); !strings.Contains(msg, "client hello") {
		t.Fatalf("error %q", msg)
	}
}

func TestBadPrologue(t *testing.T) {
	srv := NewServer(t)
	ws := dialRaw(t, srv)
	if err := ws.Write(context.Background(), websocket.MessageBinary, []byte("GET / HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, ws)
	waitUntil(t, "error recorded", func() bool { return len(srv.Errors()) == 1 })
	if msg := srv.Errors()[0].Error(); !strings.Contains(msg, "prologue") {
		t.Fatalf("error %q", msg)
	}
}

func TestClientGoesSilentDuringHandshake(t *testing.T) {
	old := handshakeTimeoutForTest(200 * time.Millisecond)
	defer handshakeTimeoutForTest(old)
	srv := NewServer(t)
	ws := dialRaw(t, srv)
	// Only the prologue, then nothing: the server must give up, not hang.
	if err := ws.Write(context.Background(), websocket.MessageBinary, waPrologue); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, ws)
	waitUntil(t, "error recorded", func() bool { return len(srv.Errors()) == 1 })
}

func handshakeTimeoutForTest(d time.Duration) time.Duration {
	old := handshakeTimeout
	handshakeTimeout = d
	return old
}

// rawLogin performs the client side of the handshake by hand and returns
// the transport keys, so a test can then send what whatsmeow never would.
func rawLogin(t *testing.T, srv *Server, ws *websocket.Conn) (write cipher.AEAD) {
	t.Helper()
	ctx := context.Background()
	writeFrame := func(prefix, data []byte) {
		frame := append(append([]byte{}, prefix...), byte(len(data)>>16), byte(len(data)>>8), byte(len(data)))
		if err := ws.Write(ctx, websocket.MessageBinary, append(frame, data...)); err != nil {
			t.Fatal(err)
		}
	}
	readFrame := func() []byte {
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return data[3:]
	}
	ephemeral, static := keys.NewKeyPair(), keys.NewKeyPair()
	hello, _ := proto.Marshal(&waWa6.HandshakeMessage{ClientHello: &waWa6.HandshakeMessage_ClientHello{Ephemeral: ephemeral.Pub[:]}})
	writeFrame(waPrologue, hello)
	ns := newNoiseState()
	ns.mixHash(ephemeral.Pub[:])
	var serverHello waWa6.HandshakeMessage
	if err := proto.Unmarshal(readFrame(), &serverHello); err != nil {
		t.Fatal(err)
	}
	sh := serverHello.GetServerHello()
	ns.mixHash(sh.GetEphemeral())
	must(t, ns.mixDH(ephemeral.Priv, sh.GetEphemeral()))
	serverStatic, err := ns.decrypt(sh.GetStatic())
	must(t, err)
	must(t, ns.mixDH(ephemeral.Priv, serverStatic))
	_, err = ns.decrypt(sh.GetPayload())
	must(t, err)
	encStatic := ns.encrypt(static.Pub[:])
	must(t, ns.mixDH(static.Priv, sh.GetEphemeral()))
	payload, _ := proto.Marshal(&waWa6.ClientPayload{Username: proto.Uint64(15550000001), Device: proto.Uint32(9)})
	encPayload := ns.encrypt(payload)
	finish, _ := proto.Marshal(&waWa6.HandshakeMessage{ClientFinish: &waWa6.HandshakeMessage_ClientFinish{Static: encStatic, Payload: encPayload}})
	writeFrame(nil, finish)
	// The server's read key is the client's write key.
	write, read, err := ns.split()
	must(t, err)
	success, err := read.Open(nil, nonce(0), readFrame(), nil)
	must(t, err)
	unpacked, err := waBinary.Unpack(success)
	must(t, err)
	node, err := waBinary.Unmarshal(unpacked)
	must(t, err)
	if node.Tag != "success" {
		t.Fatalf("expected <success>, got %s", XML(node))
	}
	return write
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestGarbageFrameAfterLogin(t *testing.T) {
	srv := NewServer(t)
	ws := dialRaw(t, srv)
	write := rawLogin(t, srv, ws)
	ctx := context.Background()
	send := func(ciphertext []byte) {
		frame := append([]byte{byte(len(ciphertext) >> 16), byte(len(ciphertext) >> 8), byte(len(ciphertext))}, ciphertext...)
		if err := ws.Write(ctx, websocket.MessageBinary, frame); err != nil {
			t.Fatal(err)
		}
	}
	// A well-formed stanza first, then an encrypted frame that is not a
	// stanza, then one that does not even decrypt.
	ping, _ := waBinary.Marshal(waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"id": "1", "xmlns": "w:p", "type": "get"}})
	send(write.Seal(nil, nonce(0), ping, nil))
	srv.WaitFor(t, "ping", IsIQ("w:p", "get"), time.Second)
	send(write.Seal(nil, nonce(1), []byte{0, 0xf8, 0xff}, nil))
	expectClosed(t, ws)
	waitUntil(t, "error recorded", func() bool { return len(srv.Errors()) == 1 })
	if msg := srv.Errors()[0].Error(); !strings.Contains(msg, "frame 2") {
		t.Fatalf("error %q", msg)
	}

	ws2 := dialRaw(t, srv)
	rawLogin(t, srv, ws2)
	if err := ws2.Write(ctx, websocket.MessageBinary, []byte{0, 0, 4, 1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, ws2)
	waitUntil(t, "second error recorded", func() bool { return len(srv.Errors()) == 2 })
	if msg := srv.Errors()[1].Error(); !strings.Contains(msg, "decrypt") {
		t.Fatalf("error %q", msg)
	}
}
