package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// routed tells whether a CONNECT target is one of WhatsApp's hosts that the
// fake server plays: the websocket (web.whatsapp.com) and the media hosts
// (mmg.whatsapp.net and the other *.whatsapp.net names), on port 443.
func routed(hostport string) bool {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || port != "443" {
		return false
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return host == websocketHost || host == "whatsapp.net" ||
		strings.HasSuffix(host, ".whatsapp.net") || strings.HasSuffix(host, ".whatsapp.com")
}

// serveConnect is the HTTP CONNECT proxy: a tunnel to a routed host becomes a
// tunnel to the fake server's TLS listener; anything else is refused, so a
// client behind the proxy never reaches the network by mistake.
func (svc *service) serveConnect(w http.ResponseWriter, r *http.Request) {
	if !routed(r.Host) {
		svc.log.Warn().Str("target", r.Host).Msg("Refused a CONNECT to a host wamock does not play")
		http.Error(w, "wamock routes only web.whatsapp.com:443 and the WhatsApp media hosts", http.StatusForbidden)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "connection cannot be hijacked", http.StatusInternalServerError)
		return
	}
	upstream, err := net.DialTimeout("tcp", svc.srv.Addr(), 10*time.Second)
	if err != nil {
		svc.log.Err(err).Str("target", r.Host).Msg("Failed to dial the fake server for a CONNECT")
		http.Error(w, "wamock: dial the fake server: "+err.Error(), http.StatusBadGateway)
		return
	}
	client, buffered, err := hj.Hijack()
	if err != nil {
		_ = upstream.Close()
		svc.log.Err(err).Msg("Failed to hijack a CONNECT")
		return
	}
	// A hijacked connection keeps whatever deadline the HTTP server set;
	// a tunnel lives as long as the client's websocket.
	_ = client.SetDeadline(time.Time{})
	if _, err = client.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		_ = client.Close()
		_ = upstream.Close()
		return
	}
	svc.log.Debug().Str("target", r.Host).Msg("Tunnel opened")
	svc.tunnels.Add(1)
	go func() {
		defer svc.tunnels.Done()
		pipe(client, buffered.Reader, upstream)
	}()
}

// pipe copies both ways until either side closes, then closes both. What
// the client sent after its CONNECT and that the HTTP server already read
// sits in buffered.
func pipe(client net.Conn, buffered io.Reader, upstream net.Conn) {
	var once sync.Once
	closeBoth := func() {
		_ = client.Close()
		_ = upstream.Close()
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(upstream, io.MultiReader(buffered, client))
		once.Do(closeBoth)
	}()
	go func() {
		defer wg.Done()
		_, _ = io.Copy(client, upstream)
		once.Do(closeBoth)
	}()
	wg.Wait()
}
