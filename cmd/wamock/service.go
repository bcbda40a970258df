package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/tctoken/tctoken/wamock"
)

// config is what the flags set.
type config struct {
	// listen is the loopback address of the proxy and control API.
	listen string
	// dir holds the test CA (reused when present) and the env file.
	dir           string
	ownPN, ownLID string
	// pairRestartDelay: see wamock.WithPairRestartDelay.
	pairRestartDelay time.Duration
	log              zerolog.Logger
	readHeaderWait   time.Duration
}

// service is wamock as a process: the fake server, and one loopback HTTP
// listener that is both the CONNECT proxy in front of it and the control API.
type service struct {
	log      zerolog.Logger
	srv      *wamock.Server
	ca       *testCA
	listener net.Listener
	http     *http.Server
	tunnels  sync.WaitGroup
	served   chan error

	// mu guards what the control API remembers between calls.
	mu sync.Mutex
	// salt is the NCT salt last set through our phone.
	salt []byte
	// ruleName is the message rule the API set last.
	ruleName string
	// tokens are the privacy tokens each contact gave us, by contact PN user.
	tokens map[string][][]byte
}

// errNotLoopback refuses a listen address other hosts could reach.
var errNotLoopback = errors.New("wamock listens on loopback only")

func startService(cfg config) (*service, error) {
	host, _, err := net.SplitHostPort(cfg.listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", cfg.listen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("listen address %q: %w", cfg.listen, errNotLoopback)
	}
	if err = os.MkdirAll(cfg.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	ca, err := loadOrCreateCA(cfg.dir)
	if err != nil {
		return nil, err
	}
	cert, err := ca.issueServerCert()
	if err != nil {
		return nil, err
	}
	opts := []wamock.Option{
		wamock.WithLogger(cfg.log),
		wamock.WithTLS(cert, ca.cert, websocketHost),
		wamock.WithPairRestartDelay(cfg.pairRestartDelay),
	}
	if cfg.ownPN != "" {
		opts = append(opts, wamock.WithOwnPN(cfg.ownPN))
	}
	if cfg.ownLID != "" {
		opts = append(opts, wamock.WithOwnLID(cfg.ownLID))
	}
	srv, err := wamock.Start(opts...)
	if err != nil {
		return nil, fmt.Errorf("start the fake server: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.listen, err)
	}
	svc := &service{
		log:      cfg.log.With().Str("component", "wamock-cmd").Logger(),
		srv:      srv,
		ca:       ca,
		listener: ln,
		served:   make(chan error, 1),
		tokens:   make(map[string][][]byte),
		ruleName: "accept",
	}
	svc.http = &http.Server{Handler: svc, ReadHeaderTimeout: cfg.readHeaderWait}
	go func() { svc.served <- svc.http.Serve(ln) }()
	return svc, nil
}

// ServeHTTP sends CONNECT requests to the proxy and the rest to the API.
func (svc *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		svc.serveConnect(w, r)
		return
	}
	svc.serveControl(w, r)
}

// URL is the base URL of the proxy and the control API.
func (svc *service) URL() string { return "http://" + svc.listener.Addr().String() }

// CertRootHex is the Noise certificate root's public key, for the client's
// whatsmeow.WACertPubKey.
func (svc *service) CertRootHex() string {
	root := wamock.CertRoot()
	return hex.EncodeToString(root[:])
}

// env is what a client process needs, as shell assignments.
func (svc *service) env() string {
	return fmt.Sprintf("WAMOCK_PROXY=%s\nWAMOCK_CONTROL=%s\nSSL_CERT_FILE=%s\nWAMOCK_CERT_ROOT=%s\n",
		svc.URL(), svc.URL(), svc.ca.certPath, svc.CertRootHex())
}

// Close stops the listener, the fake server (which ends every tunnel) and
// waits for the tunnels' goroutines.
func (svc *service) Close() {
	_ = svc.http.Close()
	svc.srv.Close()
	svc.tunnels.Wait()
	if err := <-svc.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		svc.log.Err(err).Msg("HTTP listener ended with an error")
	}
}
