package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken/wamock"
)

// controlTimeout bounds a control call that waits for the client (a QR
// scan waits for the client's answer to <pair-success>).
const controlTimeout = 60 * time.Second

// errBadRequest marks errors that are the caller's (HTTP 400).
var errBadRequest = errors.New("bad request")

// serveControl is the JSON control API. Every answer is JSON; errors are
// {"error": "..."} with status 400 (the request) or 500 (the server).
func (svc *service) serveControl(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), controlTimeout)
	defer cancel()
	route := r.Method + " " + r.URL.Path
	var (
		out any
		err error
	)
	switch {
	case route == "GET /v1/info":
		out = svc.info()
	case route == "GET /v1/contacts":
		out = svc.listContacts()
	case route == "POST /v1/contacts":
		out, err = svc.addContact(r)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/contacts/"):
		out, err = svc.contactAction(ctx, r)
	case route == "POST /v1/rule":
		out, err = svc.setRule(r)
	case route == "POST /v1/timelock":
		out, err = svc.setTimelock(ctx, r)
	case route == "POST /v1/phone/nct-salt":
		out, err = svc.setSalt(ctx, r)
	case route == "POST /v1/login/qr":
		out, err = svc.login(ctx, r, svc.srv.Phone().ScanQR)
	case route == "POST /v1/login/code":
		out, err = svc.login(ctx, r, svc.srv.Phone().EnterCode)
	case route == "GET /v1/stanzas":
		out, err = svc.listStanzas(r)
	case route == "GET /v1/errors":
		out = svc.listErrors()
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such endpoint: " + route})
		return
	}
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, errBadRequest) {
			status = http.StatusBadRequest
		}
		svc.log.Warn().Err(err).Str("route", route).Msg("Control call failed")
		writeJSON(w, status, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// readJSON decodes the body into v; an empty body leaves v as it is.
func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: request body: %v", errBadRequest, err)
	}
	return nil
}

// shortHash names a secret (a token, the salt) in output without showing
// it: the first 8 bytes of its SHA-256, in hex.
func shortHash(b []byte) string {
	if b == nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

type infoOut struct {
	Proxy    string `json:"proxy"`
	Control  string `json:"control"`
	CAFile   string `json:"ca_file"`
	CertRoot string `json:"cert_root"`
	OwnPN    string `json:"own_pn"`
	OwnLID   string `json:"own_lid"`
	Devices  []int  `json:"connected_devices"`
	// Keyed lists our devices that uploaded prekeys: contacts and our
	// phone can encrypt to them.
	Keyed        []string `json:"keyed_devices"`
	Rule         string   `json:"rule"`
	SaltSHA256   string   `json:"salt_sha256,omitempty"`
	MediaHost    string   `json:"media_host"`
	WebsocketURL string   `json:"websocket_url"`
}

func (svc *service) info() infoOut {
	svc.mu.Lock()
	salt := svc.salt
	rule := svc.ruleName
	svc.mu.Unlock()
	devices := []int{}
	for _, d := range svc.srv.ConnectedDevices() {
		devices = append(devices, int(d))
	}
	keyed := []string{}
	for _, jid := range svc.srv.OwnDeviceJIDs() {
		keyed = append(keyed, jid.String())
	}
	return infoOut{
		Proxy:        svc.URL(),
		Control:      svc.URL(),
		CAFile:       svc.ca.certPath,
		CertRoot:     svc.CertRootHex(),
		OwnPN:        svc.srv.OwnPN().String(),
		OwnLID:       svc.srv.OwnLID().String(),
		Devices:      devices,
		Keyed:        keyed,
		Rule:         rule,
		SaltSHA256:   shortHash(salt),
		MediaHost:    wamock.DefaultMediaHost,
		WebsocketURL: "wss://" + websocketHost + "/ws/chat",
	}
}

type contactOut struct {
	PN       string `json:"pn"`
	LID      string `json:"lid,omitempty"`
	PushName string `json:"push_name,omitempty"`
	// Tokens is how many privacy tokens the contact gave us through the API.
	Tokens int `json:"tokens_given"`
}

func (svc *service) contactJSON(c *wamock.Contact) contactOut {
	svc.mu.Lock()
	n := len(svc.tokens[c.PN().User])
	svc.mu.Unlock()
	out := contactOut{PN: c.PN().String(), PushName: c.PushName(), Tokens: n}
	if !c.LID().IsEmpty() {
		out.LID = c.LID().String()
	}
	return out
}

func (svc *service) listContacts() []contactOut {
	out := []contactOut{}
	for _, c := range svc.srv.Contacts() {
		out = append(out, svc.contactJSON(c))
	}
	return out
}

type addContactIn struct {
	PN       string `json:"pn"`
	LID      string `json:"lid"`
	PushName string `json:"push_name"`
	Devices  int    `json:"devices"`
	NoLID    bool   `json:"no_lid"`
}

// addContact makes a contact: a number usync knows, with a LID and Signal
// keys. Numbers are user parts ("15551230001"); a leading + is dropped.
func (svc *service) addContact(r *http.Request) (contactOut, error) {
	var in addContactIn
	if err := readJSON(r, &in); err != nil {
		return contactOut{}, err
	}
	in.PN = strings.TrimPrefix(in.PN, "+")
	if !allDigits(in.PN) || !allDigits(in.LID) {
		return contactOut{}, fmt.Errorf("%w: pn and lid are digits only", errBadRequest)
	}
	if in.PN != "" && svc.contact(in.PN) != nil {
		return contactOut{}, fmt.Errorf("%w: contact %s exists already", errBadRequest, in.PN)
	}
	c := svc.srv.AddContact(wamock.ContactOptions{PN: in.PN, LID: in.LID, PushName: in.PushName, Devices: in.Devices, NoLID: in.NoLID})
	svc.log.Info().Stringer("pn", c.PN()).Stringer("lid", c.LID()).Msg("Contact added")
	return svc.contactJSON(c), nil
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func (svc *service) contact(pn string) *wamock.Contact {
	return svc.srv.Contact(types.NewJID(strings.TrimPrefix(pn, "+"), types.DefaultUserServer))
}

type textIn struct {
	Text string `json:"text"`
}

type tokenIn struct {
	// Token is base64; empty makes a random 24-byte token.
	Token string `json:"token"`
	// T is the token's timestamp (Unix seconds); 0 means now.
	T int64 `json:"t"`
	// From is the address the notification comes from: "lid" (the
	// default, as for accounts that moved to LIDs) or "pn".
	From string `json:"from"`
}

// contactAction is POST /v1/contacts/{pn}/text and
// POST /v1/contacts/{pn}/privacy-token: the contact sends us a message, or
// its privacy token.
func (svc *service) contactAction(ctx context.Context, r *http.Request) (any, error) {
	pn, action, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v1/contacts/"), "/")
	if !ok {
		return nil, fmt.Errorf("%w: want /v1/contacts/{pn}/text or /privacy-token", errBadRequest)
	}
	c := svc.contact(pn)
	if c == nil {
		return nil, fmt.Errorf("%w: no contact %s", errBadRequest, pn)
	}
	switch action {
	case "text":
		var in textIn
		if err := readJSON(r, &in); err != nil {
			return nil, err
		}
		id, err := c.SendTextAndWait(ctx, in.Text)
		if err != nil {
			return nil, fmt.Errorf("contact %s sends a text: %w", c.PN(), err)
		}
		return map[string]string{"id": id}, nil
	case "privacy-token":
		return svc.givePrivacyToken(ctx, r, c)
	default:
		return nil, fmt.Errorf("%w: unknown contact action %q", errBadRequest, action)
	}
}

type tokenOut struct {
	// TokenSHA256 names the token (see shortHash); stanzas carrying it show
	// the same value.
	TokenSHA256 string `json:"token_sha256"`
	T           int64  `json:"t"`
}

// givePrivacyToken pushes the contact's privacy_token notification (from its
// LID or its PN, for our LID) and waits until the client has handled it.
func (svc *service) givePrivacyToken(ctx context.Context, r *http.Request, c *wamock.Contact) (tokenOut, error) {
	var in tokenIn
	if err := readJSON(r, &in); err != nil {
		return tokenOut{}, err
	}
	token, err := base64.StdEncoding.DecodeString(in.Token)
	if err != nil {
		return tokenOut{}, fmt.Errorf("%w: token is not base64: %v", errBadRequest, err)
	}
	if len(token) == 0 {
		token = make([]byte, 24)
		_, _ = rand.Read(token)
	}
	if in.T == 0 {
		in.T = time.Now().Unix()
	}
	var from types.JID
	switch in.From {
	case "", "lid":
		from = c.JID()
	case "pn":
		from = c.PN()
	default:
		return tokenOut{}, fmt.Errorf("%w: from %q is not lid or pn", errBadRequest, in.From)
	}
	if err = svc.srv.PushPrivacyTokenAndWait(ctx, from, types.EmptyJID, svc.srv.OwnLID(), token, in.T); err != nil {
		return tokenOut{}, fmt.Errorf("contact %s gives its privacy token: %w", c.PN(), err)
	}
	svc.mu.Lock()
	svc.tokens[c.PN().User] = append(svc.tokens[c.PN().User], token)
	svc.mu.Unlock()
	svc.log.Info().Stringer("pn", c.PN()).Str("token_sha256", shortHash(token)).Int64("t", in.T).Msg("Contact gave its privacy token")
	return tokenOut{TokenSHA256: shortHash(token), T: in.T}, nil
}

type ruleIn struct {
	// Rule is "accept", "require-token" (any <tctoken> or <cstoken>) or
	// "require-cstoken" (a <tctoken>, or the <cstoken> the salt gives).
	Rule string `json:"rule"`
}

func (svc *service) setRule(r *http.Request) (map[string]string, error) {
	var in ruleIn
	if err := readJSON(r, &in); err != nil {
		return nil, err
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	switch in.Rule {
	case "accept":
		svc.srv.SetMessageRule(nil)
	case "require-token":
		svc.srv.SetMessageRule(wamock.RequireToken())
	case "require-cstoken":
		if svc.salt == nil {
			return nil, fmt.Errorf("%w: require-cstoken needs the NCT salt: POST /v1/phone/nct-salt first", errBadRequest)
		}
		svc.srv.SetMessageRule(wamock.RequireCSToken(svc.salt))
	default:
		return nil, fmt.Errorf("%w: rule %q is not accept, require-token or require-cstoken", errBadRequest, in.Rule)
	}
	svc.ruleName = in.Rule
	svc.log.Info().Str("rule", in.Rule).Msg("Message rule set")
	return map[string]string{"rule": in.Rule}, nil
}

type timelockIn struct {
	Active bool `json:"active"`
	// Ends is the enforcement's end in Unix seconds; 0 leaves it out.
	Ends            int64  `json:"ends"`
	EnforcementType string `json:"enforcement_type"`
	// Push also sends the timelock notification to the connected devices;
	// without it only the timelock query's answer changes.
	Push bool `json:"push"`
}

// setTimelock sets the account's reach-out timelock, which the timelock MEX
// query answers, and pushes it when asked.
func (svc *service) setTimelock(ctx context.Context, r *http.Request) (map[string]any, error) {
	var in timelockIn
	if err := readJSON(r, &in); err != nil {
		return nil, err
	}
	if in.Ends < 0 {
		return nil, fmt.Errorf("%w: ends %d is before 1970", errBadRequest, in.Ends)
	}
	tl := wamock.ReachoutTimelock{Active: in.Active, EnforcementType: in.EnforcementType}
	if in.Ends > 0 {
		tl.Ends = time.Unix(in.Ends, 0)
	}
	if in.Push {
		if err := svc.srv.PushReachoutTimelock(ctx, tl); err != nil {
			return nil, err
		}
	} else {
		svc.srv.SetReachoutTimelock(tl)
	}
	svc.log.Info().Bool("active", in.Active).Int64("ends", in.Ends).Str("enforcement_type", in.EnforcementType).Bool("push", in.Push).Msg("Reach-out timelock set")
	return map[string]any{"active": in.Active, "ends": in.Ends, "enforcement_type": in.EnforcementType, "pushed": in.Push}, nil
}

type saltIn struct {
	// Salt is base64; empty makes a random 32-byte salt.
	Salt string `json:"salt"`
}

// setSalt plays our phone: it shares the app state key with our devices and
// writes the NCT salt into app state (regular_high), as the phone does.
func (svc *service) setSalt(ctx context.Context, r *http.Request) (map[string]string, error) {
	var in saltIn
	if err := readJSON(r, &in); err != nil {
		return nil, err
	}
	salt, err := base64.StdEncoding.DecodeString(in.Salt)
	if err != nil {
		return nil, fmt.Errorf("%w: salt is not base64: %v", errBadRequest, err)
	}
	if len(salt) == 0 {
		salt = make([]byte, 32)
		_, _ = rand.Read(salt)
	}
	if len(svc.srv.ConnectedDevices()) == 0 {
		return nil, fmt.Errorf("%w: no device is logged in to receive the salt", errBadRequest)
	}
	// A device that just paired is still uploading its prekeys; the phone
	// needs them to encrypt the key share.
	if err = waitKeyed(ctx, svc.srv); err != nil {
		return nil, err
	}
	phone := svc.srv.Phone()
	if err = phone.ShareAppStateKeys(ctx); err != nil {
		return nil, err
	}
	if err = phone.SetNCTSalt(ctx, salt); err != nil {
		return nil, fmt.Errorf("set the NCT salt: %w", err)
	}
	svc.mu.Lock()
	svc.salt = salt
	// A rule that checks cstokens follows the salt.
	if svc.ruleName == "require-cstoken" {
		svc.srv.SetMessageRule(wamock.RequireCSToken(salt))
	}
	svc.mu.Unlock()
	svc.log.Info().Str("salt_sha256", shortHash(salt)).Msg("NCT salt set through our phone")
	return map[string]string{"salt_sha256": shortHash(salt)}, nil
}

// waitKeyed waits until one of our devices has uploaded prekeys.
func waitKeyed(ctx context.Context, srv *wamock.Server) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for len(srv.OwnDeviceJIDs()) == 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("no device of ours uploaded prekeys: %w", ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

type loginIn struct {
	// Code is the QR code's text, or the pairing code ("ABCD-EFGH").
	Code string `json:"code"`
}

// login completes a QR or pairing-code login with our phone.
func (svc *service) login(ctx context.Context, r *http.Request, phoneStep func(context.Context, string) (types.JID, error)) (map[string]string, error) {
	var in loginIn
	if err := readJSON(r, &in); err != nil {
		return nil, err
	}
	if in.Code == "" {
		return nil, fmt.Errorf("%w: code is empty", errBadRequest)
	}
	jid, err := phoneStep(ctx, in.Code)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	svc.log.Info().Stringer("jid", jid).Msg("Our phone linked a device")
	return map[string]string{"jid": jid.String()}, nil
}

type ackOut struct {
	Accepted bool `json:"accepted"`
	// Error is the ack's error code (463: no valid privacy token), 0 if none.
	Error int `json:"error,omitempty"`
}

type stanzaOut struct {
	Index  int    `json:"index"`
	Device int    `json:"device"`
	Tag    string `json:"tag"`
	ID     string `json:"id,omitempty"`
	Type   string `json:"type,omitempty"`
	To     string `json:"to,omitempty"`
	XMLNS  string `json:"xmlns,omitempty"`
	// TCToken and CSToken name the tokens a message carries (shortHash).
	TCToken string `json:"tctoken_sha256,omitempty"`
	CSToken string `json:"cstoken_sha256,omitempty"`
	// CSTokenValid: the cstoken is HMAC(salt, recipient's LID) for the salt
	// set through the phone. TCTokenGiven: the tctoken is one the recipient
	// gave us through the API.
	CSTokenValid *bool `json:"cstoken_valid,omitempty"`
	TCTokenGiven *bool `json:"tctoken_given,omitempty"`
	// Ack is the server's ack of a message; null until it was sent.
	Ack *ackOut `json:"ack,omitempty"`
	// XML is the stanza, shortened (token contents are binary).
	XML string `json:"xml"`
}

type stanzasOut struct {
	// Next is the index to pass as since= to get only newer stanzas.
	Next     int         `json:"next"`
	Stanzas  []stanzaOut `json:"stanzas"`
	Received int         `json:"received"`
}

// maxStanzaXML keeps a prekey upload from filling the answer.
const maxStanzaXML = 2048

// listStanzas is GET /v1/stanzas[?tag=message][&since=N]: what the clients
// sent, with the acks of messages.
func (svc *service) listStanzas(r *http.Request) (stanzasOut, error) {
	q := r.URL.Query()
	since := 0
	if s := q.Get("since"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return stanzasOut{}, fmt.Errorf("%w: since=%q is not an index", errBadRequest, s)
		}
		since = n
	}
	tag := q.Get("tag")
	all := svc.srv.Received()
	out := stanzasOut{Next: len(all), Received: len(all), Stanzas: []stanzaOut{}}
	for i := since; i < len(all); i++ {
		n := all[i]
		if tag != "" && n.Tag != tag {
			continue
		}
		out.Stanzas = append(out.Stanzas, svc.stanzaJSON(i, n))
	}
	return out, nil
}

func (svc *service) stanzaJSON(i int, n *waBinary.Node) stanzaOut {
	device, _ := svc.srv.ReceivedFrom(n)
	xml := wamock.XML(n)
	if len(xml) > maxStanzaXML {
		xml = xml[:maxStanzaXML] + "…"
	}
	out := stanzaOut{
		Index: i, Device: int(device), Tag: n.Tag,
		ID: attrString(n, "id"), Type: attrString(n, "type"),
		To: attrString(n, "to"), XMLNS: attrString(n, "xmlns"), XML: xml,
	}
	if n.Tag != "message" {
		return out
	}
	if ack, ok := svc.srv.AckFor(out.ID); ok {
		out.Ack = &ackOut{Accepted: ack.Accepted(), Error: ack.Error}
	}
	to := svc.recipient(n)
	if cs := wamock.MessageCSToken(n); cs != nil {
		out.CSToken = shortHash(cs)
		svc.mu.Lock()
		salt := svc.salt
		svc.mu.Unlock()
		valid := to != nil && salt != nil && !to.LID().IsEmpty() && bytes.Equal(cs, wamock.CSToken(salt, to.LID()))
		out.CSTokenValid = &valid
	}
	if tc := wamock.MessageToken(n); tc != nil {
		out.TCToken = shortHash(tc)
		given := false
		if to != nil {
			svc.mu.Lock()
			for _, t := range svc.tokens[to.PN().User] {
				given = given || bytes.Equal(t, tc)
			}
			svc.mu.Unlock()
		}
		out.TCTokenGiven = &given
	}
	return out
}

// attrString is an attribute as text: addresses (to, from) are JIDs in the
// decoded stanza, not strings.
func attrString(n *waBinary.Node, key string) string {
	switch v := n.Attrs[key].(type) {
	case nil:
		return ""
	case string:
		return v
	case types.JID:
		return v.String()
	default:
		return fmt.Sprint(v)
	}
}

// recipient is the contact a message went to, by PN or LID.
func (svc *service) recipient(n *waBinary.Node) *wamock.Contact {
	to, ok := n.Attrs["to"].(types.JID)
	if !ok {
		return nil
	}
	return svc.srv.Contact(to.ToNonAD())
}

func (svc *service) listErrors() []string {
	out := []string{}
	for _, err := range svc.srv.Errors() {
		out = append(out, err.Error())
	}
	return out
}
