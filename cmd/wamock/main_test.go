package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"
	"google.golang.org/protobuf/proto"
)

// caDir holds the test CA every service in this test binary shares. Go
// reads SSL_CERT_FILE once per process, so TestMain creates the CA and
// points SSL_CERT_FILE at it before any TLS handshake, as a bridge's
// environment does: the clients below trust the server only through it.
var caDir string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "wamock-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if _, err = loadOrCreateCA(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	caDir = dir
	os.Setenv("SSL_CERT_FILE", filepath.Join(dir, caCertFile))
	return m.Run()
}

// startTestService runs the service the way main does, on a free loopback
// port, logging into t.
func startTestService(t *testing.T) *service {
	t.Helper()
	log := zerolog.New(zerolog.ConsoleWriter{Out: testWriter{t}, NoColor: true}).Level(zerolog.WarnLevel)
	svc, err := startService(config{listen: "127.0.0.1:0", dir: caDir, log: log})
	if err != nil {
		t.Fatalf("start service: %v", err)
	}
	t.Cleanup(svc.Close)
	return svc
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// call makes a control API request and decodes the JSON answer into out
// (when not nil). It returns the HTTP status.
func call(t *testing.T, svc *service, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, svc.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	// No proxy for the control API itself, whatever the environment says.
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err = json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	if resp.StatusCode != http.StatusOK {
		t.Logf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	return resp.StatusCode
}

// mustCall is call that fails the test unless the answer is 200.
func mustCall(t *testing.T, svc *service, method, path string, body any, out any) {
	t.Helper()
	if status := call(t, svc, method, path, body, out); status != http.StatusOK {
		t.Fatalf("%s %s: status %d", method, path, status)
	}
}

// newProxiedClient is a whatsmeow client for a new, unpaired SQLite store,
// set up as a bridge in another process would be: its only route to the
// server is SetProxyAddress, and it trusts the TLS certificate only through
// SSL_CERT_FILE (whatsmeow.WACertPubKey is the process's test root already:
// the test checks the service prints that key).
func newProxiedClient(t *testing.T, svc *service) *whatsmeow.Client {
	t.Helper()
	dsn := "file:" + filepath.Join(t.TempDir(), "client.db") + "?_foreign_keys=on"
	container, err := sqlstore.New(context.Background(), "sqlite3", dsn, waLog.Noop)
	if err != nil {
		t.Fatalf("open client store: %v", err)
	}
	cli := whatsmeow.NewClient(container.NewDevice(), waLog.Noop)
	if err = cli.SetProxyAddress(svc.URL()); err != nil {
		t.Fatalf("set proxy: %v", err)
	}
	t.Cleanup(func() {
		cli.Disconnect()
		_ = container.Close()
	})
	return cli
}

// connectedSignal reports events.Connected.
func connectedSignal(cli *whatsmeow.Client) <-chan struct{} {
	ch := make(chan struct{}, 1)
	cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Connected); ok {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	})
	return ch
}

func waitConnected(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("the client did not reach events.Connected within 30 s")
	}
}

// loginByQR connects cli through the proxy and has the control API scan its
// first QR code; it returns once the new device is logged in.
func loginByQR(t *testing.T, svc *service, cli *whatsmeow.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	qr, err := cli.GetQRChannel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	connected := connectedSignal(cli)
	if err = cli.Connect(); err != nil {
		t.Fatalf("connect through the proxy: %v", err)
	}
	item := <-qr
	if item.Event != whatsmeow.QRChannelEventCode {
		t.Fatalf("QR channel said %q (%v), want a code", item.Event, item.Error)
	}
	var login map[string]string
	mustCall(t, svc, "POST", "/v1/login/qr", loginIn{Code: item.Code}, &login)
	if item = <-qr; item != whatsmeow.QRChannelSuccess {
		t.Fatalf("QR channel ended with %q (%v)", item.Event, item.Error)
	}
	waitConnected(t, connected)
	if got := cli.Store.ID; got == nil || got.String() != login["jid"] {
		t.Fatalf("client logged in as %v, the control API said %s", got, login["jid"])
	}
}

// messageStanza finds the message with this ID in GET /v1/stanzas.
func messageStanza(t *testing.T, svc *service, id string) stanzaOut {
	t.Helper()
	var list stanzasOut
	mustCall(t, svc, "GET", "/v1/stanzas?tag=message", nil, &list)
	for _, st := range list.Stanzas {
		if st.ID == id {
			return st
		}
	}
	t.Fatalf("message %s is not in /v1/stanzas (%d stanzas)", id, len(list.Stanzas))
	return stanzaOut{}
}

// TestProxyQRLoginAndTokens is the control API's story with a real
// whatsmeow client that reaches the server only through the CONNECT proxy:
// QR login, a contact, a first message without a token (463), the salt,
// the rule "a valid cstoken or a tctoken", a message with the right cstoken
// (accepted), the contact's privacy token, and a message carrying it.
func TestProxyQRLoginAndTokens(t *testing.T) {
	svc := startTestService(t)
	var info infoOut
	mustCall(t, svc, "GET", "/v1/info", nil, &info)
	if root := whatsmeow.WACertPubKey; info.CertRoot != fmt.Sprintf("%x", root[:]) {
		t.Fatalf("cert_root %s is not the key whatsmeow verifies against", info.CertRoot)
	}
	if info.CAFile != os.Getenv("SSL_CERT_FILE") {
		t.Fatalf("ca_file %s, want the reused CA %s", info.CAFile, os.Getenv("SSL_CERT_FILE"))
	}

	cli := newProxiedClient(t, svc)
	loginByQR(t, svc, cli)

	var bob contactOut
	mustCall(t, svc, "POST", "/v1/contacts", addContactIn{PN: "+15551230001", PushName: "Bob"}, &bob)
	if bob.PN != "15551230001@s.whatsapp.net" || !strings.HasSuffix(bob.LID, "@lid") {
		t.Fatalf("contact %+v, want the PN asked for and a LID", bob)
	}
	ctx := context.Background()
	bobPN := types.NewJID("15551230001", types.DefaultUserServer)
	// Before the salt no whatsmeow has a token for bob: 463.
	mustCall(t, svc, "POST", "/v1/rule", ruleIn{Rule: "require-token"}, nil)
	resp, err := cli.SendMessage(ctx, bobPN, &waE2E.Message{Conversation: proto.String("first")})
	if !errors.Is(err, whatsmeow.ErrServerReturnedError) {
		t.Fatalf("first message without a token: err %v, want the server's 463", err)
	}
	first := messageStanza(t, svc, resp.ID)
	// whatsmeow 2025-12 writes to the PN; 33cfac51 to the LID.
	if first.Ack == nil || first.Ack.Error != 463 || first.CSToken != "" || (first.To != bob.PN && first.To != bob.LID) {
		t.Fatalf("first message: %+v, want one to %s or %s with no cstoken and ack 463", first, bob.PN, bob.LID)
	}

	salt := bytes.Repeat([]byte{7}, 32)
	mustCall(t, svc, "POST", "/v1/phone/nct-salt", saltIn{Salt: base64.StdEncoding.EncodeToString(salt)}, nil)
	mustCall(t, svc, "POST", "/v1/rule", ruleIn{Rule: "require-cstoken"}, nil)
	lid, err := types.ParseJID(bob.LID)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, salt)
	mac.Write([]byte(lid.User + "@lid"))
	// whatsmeow 33cfac51 may add the same cstoken itself, once it has the salt.
	resp, err = cli.SendMessage(ctx, bobPN, &waE2E.Message{Conversation: proto.String("with cstoken")},
		whatsmeow.SendRequestExtra{AdditionalNodes: &[]waBinary.Node{{Tag: "cstoken", Content: mac.Sum(nil)}}})
	if err != nil {
		t.Fatalf("message with the right cstoken: %v", err)
	}
	if st := messageStanza(t, svc, resp.ID); st.Ack == nil || !st.Ack.Accepted || st.CSTokenValid == nil || !*st.CSTokenValid {
		t.Fatalf("message with the right cstoken: %+v, want cstoken_valid and accepted", st)
	}

	var given tokenOut
	// whatsmeow alone looks tokens up by the address it writes to.
	from := "pn"
	if first.To == bob.LID {
		from = "lid"
	}
	mustCall(t, svc, "POST", "/v1/contacts/15551230001/privacy-token", tokenIn{From: from}, &given)
	mustCall(t, svc, "POST", "/v1/rule", ruleIn{Rule: "require-token"}, nil)
	resp, err = cli.SendMessage(ctx, bobPN, &waE2E.Message{Conversation: proto.String("with tctoken")})
	if err != nil {
		t.Fatalf("message after bob's token: %v", err)
	}
	st := messageStanza(t, svc, resp.ID)
	if st.Ack == nil || !st.Ack.Accepted || st.TCToken != given.TokenSHA256 || st.TCTokenGiven == nil || !*st.TCTokenGiven {
		t.Fatalf("message after bob's token: %+v, want tctoken %s, given and accepted", st, given.TokenSHA256)
	}
	var errs []string
	mustCall(t, svc, "GET", "/v1/errors", nil, &errs)
	if len(errs) != 0 {
		t.Fatalf("server errors: %v", errs)
	}
}

// TestPairingCodeLogin completes a pairing-code login through the API.
func TestPairingCodeLogin(t *testing.T) {
	svc := startTestService(t)
	cli := newProxiedClient(t, svc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	qr, err := cli.GetQRChannel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	connected := connectedSignal(cli)
	if err = cli.Connect(); err != nil {
		t.Fatal(err)
	}
	if item := <-qr; item.Event != whatsmeow.QRChannelEventCode {
		t.Fatalf("QR channel said %q, want a code first", item.Event)
	}
	code, err := cli.PairPhone(ctx, "+"+svc.srv.OwnPN().User, true, whatsmeow.PairClientChrome, "Chrome (Linux)")
	if err != nil {
		t.Fatalf("PairPhone: %v", err)
	}
	if status := call(t, svc, "POST", "/v1/login/code", loginIn{Code: "AAAA-AAAA"}, nil); status != http.StatusBadRequest {
		t.Fatalf("a wrong pairing code: status %d, want 400", status)
	}
	mustCall(t, svc, "POST", "/v1/login/code", loginIn{Code: code}, nil)
	waitConnected(t, connected)
	var info infoOut
	mustCall(t, svc, "GET", "/v1/info", nil, &info)
	if len(info.Devices) != 1 || cli.Store.ID == nil || info.Devices[0] != int(cli.Store.ID.Device) {
		t.Fatalf("connected devices %v, want the paired client's", info.Devices)
	}
}

// TestProxyRouting: the proxy serves WhatsApp's media hosts from the fake
// server (TLS verified through SSL_CERT_FILE) and refuses other hosts.
func TestProxyRouting(t *testing.T) {
	svc := startTestService(t)
	proxyURL, err := url.Parse(svc.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxied := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	resp, err := proxied.Get("https://mmg.whatsapp.net/v/t62.none/nothing.enc")
	if err != nil {
		t.Fatalf("media host through the proxy: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown media blob: status %d, want the fake media host's 404", resp.StatusCode)
	}
	if _, err = proxied.Get("https://example.org/"); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("a host wamock does not play: err %v, want the proxy's 403", err)
	}
	if _, err = proxied.Get("https://web.whatsapp.com:8443/"); err == nil {
		t.Fatal("web.whatsapp.com on another port was routed")
	}
}

// TestControlAPIRefusals: what the API refuses, and that it says why.
func TestControlAPIRefusals(t *testing.T) {
	svc := startTestService(t)
	cases := []struct {
		method, path string
		body         any
		want         int
	}{
		{"GET", "/v1/nothing", nil, http.StatusNotFound},
		{"POST", "/v1/rule", ruleIn{Rule: "require-cstoken"}, http.StatusBadRequest}, // no salt yet
		{"POST", "/v1/rule", ruleIn{Rule: "sometimes"}, http.StatusBadRequest},
		{"POST", "/v1/rule", map[string]string{"rul": "accept"}, http.StatusBadRequest},
		{"POST", "/v1/phone/nct-salt", saltIn{}, http.StatusBadRequest}, // no device logged in
		{"POST", "/v1/login/qr", loginIn{Code: "1@x,a,b,c"}, http.StatusBadRequest},
		{"POST", "/v1/contacts", addContactIn{PN: "555-1234"}, http.StatusBadRequest},
		{"POST", "/v1/contacts/15559999999/text", textIn{Text: "hi"}, http.StatusBadRequest},
		{"GET", "/v1/stanzas?since=-1", nil, http.StatusBadRequest},
	}
	for _, c := range cases {
		if got := call(t, svc, c.method, c.path, c.body, nil); got != c.want {
			t.Errorf("%s %s %+v: status %d, want %d", c.method, c.path, c.body, got, c.want)
		}
	}
	mustCall(t, svc, "POST", "/v1/contacts", addContactIn{PN: "15551230002"}, nil)
	if got := call(t, svc, "POST", "/v1/contacts", addContactIn{PN: "15551230002"}, nil); got != http.StatusBadRequest {
		t.Errorf("a contact added twice: status %d, want 400", got)
	}
	if _, err := startService(config{listen: "0.0.0.0:0", dir: caDir}); !errors.Is(err, errNotLoopback) {
		t.Errorf("listening on 0.0.0.0: err %v, want errNotLoopback", err)
	}
}
