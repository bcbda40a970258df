package wamock

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// Defaults for our own account.
const (
	DefaultOwnPN  = "15550000001"
	DefaultOwnLID = "100000000000001"
	// DefaultMediaHost is the host name the media_conn IQ hands out. The
	// client's media requests reach the test server whatever the host is.
	DefaultMediaHost = "mmg.whatsapp.net"
	// tlsServerName is one of the names in httptest's certificate.
	tlsServerName = "example.com"
)

// Option configures a Server.
type Option func(*Server)

// WithOwnPN sets the phone number (user part) of our account.
func WithOwnPN(pn string) Option {
	return func(s *Server) { s.ownPN = types.NewJID(pn, types.DefaultUserServer) }
}

// WithOwnLID sets the LID (user part) of our account.
func WithOwnLID(lid string) Option {
	return func(s *Server) { s.ownLID = types.NewJID(lid, types.HiddenUserServer) }
}

// WithLogger replaces the default logger (console output into t.Log).
func WithLogger(log zerolog.Logger) Option {
	return func(s *Server) { s.log = log; s.customLog = true }
}

// WithWrongCertRoot makes the server sign its certificate chain with a root
// that is not the one installed in whatsmeow.WACertPubKey, so every client
// handshake fails certificate verification.
func WithWrongCertRoot() Option { return func(s *Server) { s.wrongRoot = true } }

// WithTLS makes the server present cert (a chain that ca signed) instead of
// httptest's certificate for example.com. A standalone server uses it so
// that clients in other processes, which trust ca through SSL_CERT_FILE,
// accept it under the names they dial (web.whatsapp.com, the media hosts).
// serverName is one of cert's names; HTTPClient asks for it.
func WithTLS(cert tls.Certificate, ca *x509.Certificate, serverName string) Option {
	return func(s *Server) { s.tlsCert, s.tlsCA, s.tlsName = &cert, ca, serverName }
}

// WithPairRestartDelay makes the server wait d after the client's
// <pair-device-sign> before it sends stream error 515. By default the 515
// follows at once, faster than any network: whatsmeow reads it while it is
// still dispatching events.PairSuccess on another goroutine, and a client
// that needs PairSuccess before the reconnect (mautrix-whatsapp's login)
// then sees them in the wrong order. A standalone server in front of such a
// client sets a delay like a real round trip.
func WithPairRestartDelay(d time.Duration) Option {
	return func(s *Server) { s.pairRestartDelay = d }
}

// WithFreshDevices makes NewDevice leave the prekey store empty, so each
// client does the initial upload of 812 prekeys a newly paired device does.
// By default NewDevice registers 50 prekeys with the server up front, which
// is much faster under the race detector.
func WithFreshDevices() Option { return func(s *Server) { s.freshDevices = true } }

// WithLIDMigrated makes NewDevice mark devices as LID-migrated (a non-zero
// Store.LIDMigrationTimestamp), as accounts are since 2025: whatsmeow then
// resolves a PN recipient to its LID (through usync) and sends to the LID.
// By default devices are not migrated and messages go to the JID given.
func WithLIDMigrated() Option { return func(s *Server) { s.lidMigrated = true } }

// WithEmptyAppState starts with no app state at all. By default the server
// seeds regular_high with one mutation (see Phone), so that a client's first
// sync leaves it at version 1 and later patches, like SetNCTSalt, reach it
// incrementally (with events.AppState). After syncing an empty collection
// whatsmeow stays at version 0, and its next sync is a full one, which emits
// events only with EmitAppStateEventsOnFullSync.
func WithEmptyAppState() Option { return func(s *Server) { s.emptyAppState = true } }

// WithPushName sets the push name stored in devices made by NewDevice.
func WithPushName(name string) Option { return func(s *Server) { s.pushName = name } }

// Server is a fake WhatsApp server. Create it with NewServer.
type Server struct {
	t         testing.TB
	log       zerolog.Logger
	logWriter *testLogWriter
	customLog bool
	wrongRoot bool
	// freshDevices: see WithFreshDevices.
	freshDevices  bool
	lidMigrated   bool
	emptyAppState bool
	pushName      string
	// pairRestartDelay: see WithPairRestartDelay.
	pairRestartDelay time.Duration

	ownPN, ownLID types.JID

	httpSrv *httptest.Server
	rootCAs *x509.CertPool
	// tlsCert, tlsCA and tlsName replace httptest's certificate (WithTLS).
	tlsCert   *tls.Certificate
	tlsCA     *x509.Certificate
	tlsName   string
	static    *keys.KeyPair
	certChain []byte

	ctx    context.Context
	cancel context.CancelFunc
	// wg counts connection handlers and background goroutines; Close waits
	// for them.
	wg sync.WaitGroup

	// Set at creation, then only read. They have their own locks.
	phone    *Phone
	media    *mediaHost
	appState *appStateServer

	// deliverMu orders deliveries to a device against flushing its queue.
	deliverMu sync.Mutex

	// connSeq numbers connections (conn.seq) in the order they arrive.
	connSeq atomic.Uint64

	// mu guards the fields below.
	mu          sync.Mutex
	closed      bool
	conns       map[*conn]struct{}
	devices     map[uint16]*ownDevice
	nextDevice  uint16
	contacts    []*Contact
	contactByID map[string]*Contact // keyed by "pn:<user>" and "lid:<user>"
	nextContact int

	rule           MessageRule
	privacyHandler func(iq *waBinary.Node) *waBinary.Node
	issueForm      IssueForm                           // privacy.go
	groupTokenRule func(c *Contact, token []byte) bool // group.go
	iqHandlers     map[string]func(iq *waBinary.Node) *waBinary.Node
	mex            mexRoutes
	reachout       reachoutState
	abProps        *ABProps
	abPropsErr     *ABPropsError

	obs observer

	// helpers is the state of the helpers in wait.go, people.go and group.go.
	helpers helperState

	// afterWrite, when set (by tests only, before any client connects), runs
	// after each stanza is written, with the connection's write lock held.
	afterWrite func(node *waBinary.Node)
}

// NewServer starts a fake server on a loopback TLS listener and registers
// t.Cleanup(srv.Close). The server logs into t unless WithLogger is given.
//
// It sets whatsmeow.WACertPubKey to the test root key (see the package
// documentation): do not run wamock tests in parallel with tests that connect
// real-network clients.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := start(t, opts)
	if err != nil {
		t.Fatalf("wamock: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start is NewServer outside a test, for demos and tools: the caller must
// Close it. Without WithLogger it logs nothing.
//
// Like NewServer it sets whatsmeow.WACertPubKey to the test root key, so a
// program must only call it when every client it runs is meant to talk to
// this server.
func Start(opts ...Option) (*Server, error) {
	return start(nil, opts)
}

func start(t testing.TB, opts []Option) (*Server, error) {
	s := &Server{
		t:           t,
		log:         zerolog.Nop(),
		ownPN:       types.NewJID(DefaultOwnPN, types.DefaultUserServer),
		ownLID:      types.NewJID(DefaultOwnLID, types.HiddenUserServer),
		pushName:    "wamock user",
		conns:       make(map[*conn]struct{}),
		devices:     make(map[uint16]*ownDevice),
		nextDevice:  1,
		contactByID: make(map[string]*Contact),
		iqHandlers:  make(map[string]func(iq *waBinary.Node) *waBinary.Node),
	}
	s.obs.init()
	s.SetMexHandler(ReachoutTimelockQueryID, s.answerReachoutTimelock)
	for _, opt := range opts {
		opt(s)
	}
	registerAddresses(s.ownPN, s.ownLID)
	if !s.customLog && t != nil {
		s.log, s.logWriter = newTestLogger(t)
	}
	s.log = s.log.With().Str("component", "wamock").Logger()
	s.ctx, s.cancel = context.WithCancel(context.Background())

	root := installTestRoot()
	if s.wrongRoot {
		root = keys.NewKeyPair()
	}
	s.static = keys.NewKeyPair()
	var err error
	if s.certChain, err = makeCertChain(root, s.static); err != nil {
		return nil, err
	}
	s.media = newMediaHost()
	s.appState = newAppStateServer()
	if !s.emptyAppState {
		if err := s.appState.seed(); err != nil {
			return nil, fmt.Errorf("seed app state: %w", err)
		}
	}
	s.phone, err = newPhone(s)
	if err != nil {
		return nil, fmt.Errorf("create phone: %w", err)
	}

	s.httpSrv = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	s.rootCAs = x509.NewCertPool()
	if s.tlsCert != nil {
		s.httpSrv.TLS = &tls.Config{Certificates: []tls.Certificate{*s.tlsCert}}
		s.httpSrv.StartTLS()
		s.rootCAs.AddCert(s.tlsCA)
	} else {
		s.tlsName = tlsServerName
		s.httpSrv.StartTLS()
		s.rootCAs.AddCert(s.httpSrv.Certificate())
	}
	s.log.Debug().Str("addr", s.httpSrv.Listener.Addr().String()).Msg("Fake WhatsApp server started")
	return s, nil
}

// failf reports a failure of the fake world itself (not of the client under
// test): to the test when there is one, and always to Errors().
func (s *Server) failf(format string, args ...any) {
	err := fmt.Errorf("wamock: "+format, args...)
	s.recordError(err)
	if s.t != nil {
		s.t.Errorf("%v", err)
	}
}

// Close disconnects every client and stops the server. It is safe to call
// more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := s.connList()
	s.mu.Unlock()
	for _, c := range conns {
		c.closeNow()
	}
	s.cancel()
	// Stop accepting first: the listener closing makes late dials fail fast
	// instead of racing with the waits below.
	s.httpSrv.Listener.Close()
	s.wg.Wait()
	s.httpSrv.CloseClientConnections()
	s.httpSrv.Close()
	if s.logWriter != nil {
		s.logWriter.stop()
	}
}

// OwnPN is our account's phone-number JID (no device part).
func (s *Server) OwnPN() types.JID { return s.ownPN }

// OwnLID is our account's LID (no device part).
func (s *Server) OwnLID() types.JID { return s.ownLID }

// Log is the server's logger.
func (s *Server) Log() *zerolog.Logger { return &s.log }

// Addr is the host:port of the TLS listener that serves the websocket and
// the media host: what a proxy in front of the server dials.
func (s *Server) Addr() string { return s.httpSrv.Listener.Addr().String() }

// URL is the base https URL of the test listener (for debugging; clients are
// routed to it by HTTPClient whatever URL they use).
func (s *Server) URL() string { return s.httpSrv.URL }

// HTTPClient returns a new *http.Client that sends every request to this
// server, whatever host it names, and trusts its certificate. Use it for
// whatsmeow's SetWebsocketHTTPClient and SetMediaHTTPClient.
func (s *Server) HTTPClient() *http.Client {
	addr := s.httpSrv.Listener.Addr().String()
	dialer := &net.Dialer{}
	return &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, addr)
			},
			TLSClientConfig: &tls.Config{RootCAs: s.rootCAs, ServerName: s.tlsName},
		},
	}
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ws/chat" {
		s.serveWebsocket(w, r)
		return
	}
	s.media.serveHTTP(s, w, r)
}

func (s *Server) serveWebsocket(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	// The client sends Origin https://web.whatsapp.com while the Host it asked
	// for is whatever it dialed; origin checks have no meaning here.
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.recordError(fmt.Errorf("websocket accept: %w", err))
		return
	}
	c := newConn(s, ws)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.CloseNow()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	c.run(s.ctx)
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// connList returns the open connections; the caller holds s.mu.
func (s *Server) connList() []*conn {
	list := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		list = append(list, c)
	}
	return list
}

// loggedInConns returns the connections that completed the handshake.
func (s *Server) loggedInConns() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var list []*conn
	for c := range s.conns {
		if c.loggedIn() {
			list = append(list, c)
		}
	}
	return list
}

// DropConnections closes every client connection abruptly, as a network
// failure would. whatsmeow's auto-reconnect then connects again.
func (s *Server) DropConnections() {
	s.mu.Lock()
	conns := s.connList()
	s.mu.Unlock()
	for _, c := range conns {
		c.closeNow()
	}
}

// ConnectedDevices lists the device numbers of our account that are
// currently logged in.
func (s *Server) ConnectedDevices() []uint16 {
	var out []uint16
	for _, c := range s.loggedInConns() {
		out = append(out, c.deviceNum())
	}
	return out
}

// Errors returns the protocol errors the server saw: failed handshakes,
// undecryptable or undecodable frames, and the like.
func (s *Server) Errors() []error {
	return s.obs.errorList()
}

func (s *Server) recordError(err error) {
	s.log.Warn().Err(err).Msg("Protocol error")
	s.obs.addError(err)
}

// isClosedErr tells apart the ways a websocket ends normally.
func isClosedErr(err error) bool {
	if err == nil {
		return false
	}
	status := websocket.CloseStatus(err)
	if status == websocket.StatusNormalClosure || status == websocket.StatusGoingAway {
		return true
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(err.Error(), "use of closed network connection") ||
		strings.Contains(err.Error(), "EOF")
}
