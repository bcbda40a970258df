package main

import (
	"bytes"
	"context"
	"encoding/json"

	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// storyConfig is what run hands the story.
type storyConfig struct {
	variant    string // "plugin" or "plain"
	homeserver string // Dendrite's client API
	bridge     string // the bridge's appservice listener (provisioning API)
	wamock     string // cmd/wamock's control API
	secret     string // the provisioning shared secret
	user       string // the Matrix user's localpart
	password   string
	domain     string
	bridgeDB   string // the bridge's SQLite file, to see the salt arrive
	contactPN  string // the number the account never talked to
	probePN    string // another one, written to before the salt
	stepWait   time.Duration
}

// story is one run against the live processes. Facts are what it checked,
// printed at the end.
type story struct {
	cfg     storyConfig
	http    *http.Client
	token   string // alice's Matrix access token
	userID  string
	contact contactInfo
	probe   contactInfo
	facts   []string
}

type contactInfo struct {
	PN  string `json:"pn"`
	LID string `json:"lid"`
}

// stanza is what cmd/wamock's GET /v1/stanzas lists.
type stanza struct {
	Index        int    `json:"index"`
	Tag          string `json:"tag"`
	ID           string `json:"id"`
	To           string `json:"to"`
	TCToken      string `json:"tctoken_sha256"`
	CSToken      string `json:"cstoken_sha256"`
	CSTokenValid *bool  `json:"cstoken_valid"`
	TCTokenGiven *bool  `json:"tctoken_given"`
	Ack          *struct {
		Accepted bool `json:"accepted"`
		Error    int  `json:"error"`
	} `json:"ack"`
}

type stanzaList struct {
	Next    int      `json:"next"`
	Stanzas []stanza `json:"stanzas"`
}

func runStory(args []string) error {
	var cfg storyConfig
	fs := flag.NewFlagSet("story", flag.ContinueOnError)
	fs.StringVar(&cfg.variant, "variant", "plugin", "plugin or plain (mautrix-whatsapp without the plugin's lines)")
	fs.StringVar(&cfg.homeserver, "homeserver", "", "Dendrite's URL")
	fs.StringVar(&cfg.bridge, "bridge", "", "the bridge's appservice URL")
	fs.StringVar(&cfg.wamock, "wamock", "", "cmd/wamock's control URL")
	fs.StringVar(&cfg.secret, "secret", "", "provisioning shared secret")
	fs.StringVar(&cfg.user, "user", "alice", "Matrix user localpart")
	fs.StringVar(&cfg.password, "password", "", "Matrix user password")
	fs.StringVar(&cfg.domain, "domain", "localhost", "Matrix server name")
	fs.StringVar(&cfg.bridgeDB, "bridge-db", "", "the bridge's SQLite database file")
	fs.StringVar(&cfg.contactPN, "contact", "15551230001", "the never-contacted phone number")
	fs.StringVar(&cfg.probePN, "probe", "15551230002", "another never-contacted number, written to before the salt")
	fs.DurationVar(&cfg.stepWait, "step-wait", 90*time.Second, "how long one step may take")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s := &story{cfg: cfg, http: &http.Client{Timeout: 3 * time.Minute, Transport: &http.Transport{Proxy: nil}}}
	err := s.run()
	for _, f := range s.facts {
		fmt.Println("fact:", f)
	}
	return err
}

func (s *story) fact(format string, args ...any) {
	s.facts = append(s.facts, fmt.Sprintf(format, args...))
}

func (s *story) step(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s e2e step: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func (s *story) run() error {
	if err := s.loginMatrix(); err != nil {
		return err
	}
	if err := s.waitBridge(); err != nil {
		return err
	}
	if err := s.call("POST", s.cfg.wamock+"/v1/contacts", "", map[string]any{"pn": s.cfg.contactPN, "push_name": "Bob"}, &s.contact); err != nil {
		return fmt.Errorf("add the contact on wamock: %w", err)
	}
	if err := s.call("POST", s.cfg.wamock+"/v1/contacts", "", map[string]any{"pn": s.cfg.probePN, "push_name": "Carol"}, &s.probe); err != nil {
		return fmt.Errorf("add the probe contact on wamock: %w", err)
	}
	s.step("contacts %s (%s) and %s (%s) exist on wamock", s.contact.PN, s.contact.LID, s.probe.PN, s.probe.LID)
	if err := s.loginWhatsApp(); err != nil {
		return err
	}
	if err := s.probeRefusal(); err != nil {
		return err
	}
	if err := s.setSalt(); err != nil {
		return err
	}
	if err := s.call("POST", s.cfg.wamock+"/v1/rule", "", map[string]string{"rule": "require-cstoken"}, nil); err != nil {
		return fmt.Errorf("set the rule: %w", err)
	}
	s.fact("wamock's rule: a message to a contact needs a tctoken or the cstoken HMAC(salt, contact LID), else ack error 463")

	room, err := s.createDM(s.cfg.contactPN)
	if err != nil {
		return err
	}
	first, err := s.sendAndObserve(room, s.contact, "hello from Matrix, first contact")
	if err != nil {
		return err
	}
	if s.cfg.variant == "plain" {
		err = s.judgePlainFirst(first)
	} else {
		err = s.judgePluginFirst(first)
	}
	if err != nil {
		return err
	}

	var given struct {
		TokenSHA256 string `json:"token_sha256"`
	}
	if err = s.call("POST", s.cfg.wamock+"/v1/contacts/"+s.cfg.contactPN+"/privacy-token", "", map[string]any{}, &given); err != nil {
		return fmt.Errorf("the contact gives its privacy token: %w", err)
	}
	s.step("the contact gave its privacy token (sha256 %s) and the bridge's whatsmeow handled the notification", given.TokenSHA256)
	second, err := s.sendAndObserve(room, s.contact, "second message, after the contact's token")
	if err != nil {
		return err
	}
	if second.TCToken != given.TokenSHA256 || second.TCTokenGiven == nil || !*second.TCTokenGiven {
		return fmt.Errorf("the second message carries tctoken %q (cstoken %q), want the contact's token %s", second.TCToken, second.CSToken, given.TokenSHA256)
	}
	if !second.Ack.Accepted {
		return fmt.Errorf("the second message carries the contact's tctoken but was acked with error %d", second.Ack.Error)
	}
	s.fact("second Matrix message reached wamock as <message id=%s> with the <tctoken> the contact gave (sha256 %s), acked without error", second.ID, second.TCToken)
	var errs []string
	if err = s.call("GET", s.cfg.wamock+"/v1/errors", "", nil, &errs); err != nil {
		return err
	}
	if len(errs) != 0 {
		return fmt.Errorf("wamock saw protocol errors: %s", strings.Join(errs, "; "))
	}
	s.fact("wamock saw no protocol errors")
	return nil
}

func (s *story) judgePluginFirst(first stanza) error {
	if first.CSToken == "" || first.CSTokenValid == nil || !*first.CSTokenValid {
		return fmt.Errorf("the first message carries cstoken %q (valid: %v), tctoken %q, ack error %d; want the right cstoken", first.CSToken, first.CSTokenValid, first.TCToken, first.Ack.Error)
	}
	if !first.Ack.Accepted {
		return fmt.Errorf("the first message carries the right cstoken but was acked with error %d", first.Ack.Error)
	}
	s.fact("first Matrix message reached wamock as <message id=%s> with the right <cstoken> (HMAC of the salt and %s), acked without error", first.ID, s.contact.LID)
	return nil
}

// judgePlainFirst reports what the bridge does on first contact WITHOUT the
// plugin's lines. Issue 23 expected a 463 here; whatsmeow 33cfac51, which
// mautrix-whatsapp d70eb6b pins, computes a cstoken itself once it holds
// the salt, so the run states which of the two happened. It fails only on
// what would be a bug in either: a wrong cstoken, or no answer.
func (s *story) judgePlainFirst(first stanza) error {
	switch {
	case first.Ack.Error == 463:
		s.fact("WITHOUT the plugin lines, the first Matrix message reached wamock as <message id=%s> with cstoken %q, tctoken %q, and was refused with 463", first.ID, first.CSToken, first.TCToken)
	case first.CSTokenValid != nil && *first.CSTokenValid && first.Ack.Accepted:
		s.fact("WITHOUT the plugin lines, no 463: whatsmeow 33cfac51 itself attached the right <cstoken> (HMAC of the salt and %s) to the first message <message id=%s>, which was acked without error", s.contact.LID, first.ID)
	default:
		valid := first.CSTokenValid != nil && *first.CSTokenValid
		return fmt.Errorf("WITHOUT the plugin lines, the first message was acked with error %d (cstoken %q valid=%v, tctoken %q)", first.Ack.Error, first.CSToken, valid, first.TCToken)
	}
	return nil
}

// probeRefusal shows that the harness sees a refusal: before the account
// has the NCT salt, and with wamock requiring a token, a first message to
// a second never-contacted number carries none and gets 463, with or
// without the plugin.
func (s *story) probeRefusal() error {
	if err := s.call("POST", s.cfg.wamock+"/v1/rule", "", map[string]string{"rule": "require-token"}, nil); err != nil {
		return fmt.Errorf("set the rule: %w", err)
	}
	room, err := s.createDM(s.cfg.probePN)
	if err != nil {
		return err
	}
	msg, err := s.sendAndObserve(room, s.probe, "before the salt")
	if err != nil {
		return err
	}
	if msg.Ack.Error != 463 || msg.CSToken != "" || msg.TCToken != "" {
		return fmt.Errorf("before the salt, the message to +%s carried cstoken %q, tctoken %q and was acked with %d, want no token and 463", s.cfg.probePN, msg.CSToken, msg.TCToken, msg.Ack.Error)
	}
	s.fact("before the account had the NCT salt, a first Matrix message to +%s (<message id=%s>) carried no token and wamock refused it with 463: the harness sees a refusal", s.cfg.probePN, msg.ID)
	return nil
}

// call does one JSON request; bearer may be empty. A status outside 2xx is
// an error that quotes the answer.
func (s *story) call(method, u, bearer string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		var compact bytes.Buffer
		if json.Compact(&compact, raw) == nil {
			raw = compact.Bytes()
		}
		return fmt.Errorf("%s %s: status %d: %s", method, redact(u), resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	if out != nil {
		if err = json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode %q: %w", method, redact(u), raw, err)
		}
	}
	return nil
}

func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

// poll calls check until it says done, or the step's time is up.
func (s *story) poll(what string, check func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.stepWait)
	defer cancel()
	var last error
	for {
		done, err := check()
		if done {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%s: not within %s (last error: %w)", what, s.cfg.stepWait, last)
			}
			return fmt.Errorf("%s: not within %s", what, s.cfg.stepWait)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (s *story) loginMatrix() error {
	var resp struct {
		AccessToken string `json:"access_token"`
		UserID      string `json:"user_id"`
	}
	body := map[string]any{
		"type":       "m.login.password",
		"identifier": map[string]string{"type": "m.id.user", "user": s.cfg.user},
		"password":   s.cfg.password,
	}
	if err := s.call("POST", s.cfg.homeserver+"/_matrix/client/v3/login", "", body, &resp); err != nil {
		return fmt.Errorf("log in %s on Dendrite: %w", s.cfg.user, err)
	}
	s.token, s.userID = resp.AccessToken, resp.UserID
	s.fact("Matrix user %s logged in on Dendrite v0.13.8", s.userID)
	return nil
}

func (s *story) provURL(path string) string {
	return s.cfg.bridge + "/_matrix/provision/v3" + path + "?user_id=" + url.QueryEscape(s.userID)
}

// waitBridge waits until the provisioning API answers (the bridge has
// registered with Dendrite and serves its appservice port).
func (s *story) waitBridge() error {
	var flows struct {
		Flows []struct {
			ID string `json:"id"`
		} `json:"flows"`
	}
	err := s.poll("the bridge's provisioning API", func() (bool, error) {
		err := s.call("GET", s.provURL("/login/flows"), s.cfg.secret, nil, &flows)
		return err == nil, err
	})
	if err != nil {
		return err
	}
	var ids []string
	for _, f := range flows.Flows {
		ids = append(ids, f.ID)
	}
	s.step("bridge is up; login flows %v", ids)
	return nil
}

type loginStep struct {
	LoginID        string `json:"login_id"`
	StepID         string `json:"step_id"`
	Type           string `json:"type"`
	DisplayAndWait *struct {
		Type string `json:"type"`
		Data string `json:"data"`
	} `json:"display_and_wait"`
	Complete *struct {
		UserLoginID string `json:"user_login_id"`
	} `json:"complete"`
}

// loginWhatsApp starts the bridge's QR login and has wamock's phone scan
// the code while the provisioning API waits for the outcome.
func (s *story) loginWhatsApp() error {
	var start loginStep
	if err := s.call("POST", s.provURL("/login/start/qr"), s.cfg.secret, map[string]any{}, &start); err != nil {
		return fmt.Errorf("start the QR login: %w", err)
	}
	if start.DisplayAndWait == nil || start.DisplayAndWait.Type != "qr" || start.DisplayAndWait.Data == "" {
		return fmt.Errorf("the QR login's first step is %q, with no QR code", start.Type)
	}
	s.step("bridge shows a QR code (login %s)", start.LoginID)
	type outcome struct {
		step loginStep
		err  error
	}
	done := make(chan outcome, 1)
	go func() {
		var next loginStep
		err := s.call("POST", s.provURL("/login/step/"+start.LoginID+"/"+start.StepID+"/display_and_wait"), s.cfg.secret, map[string]any{}, &next)
		done <- outcome{next, err}
	}()
	var scanned struct {
		JID string `json:"jid"`
	}
	if err := s.call("POST", s.cfg.wamock+"/v1/login/qr", "", map[string]string{"code": start.DisplayAndWait.Data}, &scanned); err != nil {
		return fmt.Errorf("wamock's phone scans the QR code: %w", err)
	}
	var res outcome
	select {
	case res = <-done:
	case <-time.After(s.cfg.stepWait):
		return fmt.Errorf("the provisioning API did not finish the login within %s of the scan", s.cfg.stepWait)
	}
	if res.err != nil {
		return fmt.Errorf("finish the QR login: %w", res.err)
	}
	if res.step.Type != "complete" || res.step.Complete == nil {
		return fmt.Errorf("the login ended with step %q, not complete", res.step.Type)
	}
	s.fact("bridge logged in through the provisioning API as %s: wamock's phone scanned the QR code (login %s)", scanned.JID, res.step.Complete.UserLoginID)
	return s.poll("the bridge's WhatsApp client logged in on wamock, its prekeys uploaded", func() (bool, error) {
		var info struct {
			Devices []int    `json:"connected_devices"`
			Keyed   []string `json:"keyed_devices"`
		}
		err := s.call("GET", s.cfg.wamock+"/v1/info", "", nil, &info)
		return err == nil && len(info.Devices) > 0 && len(info.Keyed) > 0, err
	})
}

// setSalt has wamock's phone share its app state key and write the NCT
// salt, then waits until it is in the bridge's database: in the plugin's
// table with the plugin, in whatsmeow's own table without it.
func (s *story) setSalt() error {
	var salt struct {
		SHA256 string `json:"salt_sha256"`
	}
	if err := s.call("POST", s.cfg.wamock+"/v1/phone/nct-salt", "", map[string]any{}, &salt); err != nil {
		return fmt.Errorf("set the NCT salt through our phone: %w", err)
	}
	table := "tctoken_nct_salt"
	if s.cfg.variant == "plain" {
		table = "whatsmeow_nct_salt"
	}
	err := s.poll("the NCT salt in the bridge's "+table, func() (bool, error) {
		out, err := exec.Command("sqlite3", "-readonly", s.cfg.bridgeDB, "SELECT count(*) FROM "+table).CombinedOutput()
		if err != nil {
			return false, fmt.Errorf("sqlite3: %v: %s", err, bytes.TrimSpace(out))
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(out)))
		return err == nil && n > 0, err
	})
	if err != nil {
		return err
	}
	s.fact("wamock's phone set the NCT salt (sha256 %s) through app state; the bridge stored it in %s", salt.SHA256, table)
	return nil
}

// createDM opens the DM through the provisioning API and joins it.
func (s *story) createDM(pn string) (string, error) {
	var dm struct {
		ID       string `json:"id"`
		MXID     string `json:"mxid"`
		DMRoomID string `json:"dm_room_mxid"`
	}
	if err := s.call("POST", s.provURL("/create_dm/+"+pn), s.cfg.secret, map[string]any{}, &dm); err != nil {
		return "", fmt.Errorf("create_dm to +%s: %w", pn, err)
	}
	if dm.DMRoomID == "" {
		return "", fmt.Errorf("create_dm to +%s returned no room", pn)
	}
	if err := s.call("POST", s.cfg.homeserver+"/_matrix/client/v3/join/"+url.PathEscape(dm.DMRoomID), s.token, map[string]any{}, nil); err != nil {
		return "", fmt.Errorf("%s joins the DM %s: %w", s.userID, dm.DMRoomID, err)
	}
	s.fact("POST /v3/create_dm/+%s opened %s with %s (a number the account never talked to); %s joined it", pn, dm.DMRoomID, dm.MXID, s.userID)
	return dm.DMRoomID, nil
}

// sendAndObserve sends a Matrix text into the room and returns the message
// stanza that reached wamock for the contact, once it has been acked.
func (s *story) sendAndObserve(room string, to contactInfo, text string) (stanza, error) {
	var mark stanzaList
	if err := s.call("GET", s.cfg.wamock+"/v1/stanzas?tag=none", "", nil, &mark); err != nil {
		return stanza{}, err
	}
	txn := strconv.FormatInt(time.Now().UnixNano(), 10)
	var sent struct {
		EventID string `json:"event_id"`
	}
	u := s.cfg.homeserver + "/_matrix/client/v3/rooms/" + url.PathEscape(room) + "/send/m.room.message/" + txn
	if err := s.call("PUT", u, s.token, map[string]string{"msgtype": "m.text", "body": text}, &sent); err != nil {
		return stanza{}, fmt.Errorf("send %q into %s: %w", text, room, err)
	}
	s.step("sent Matrix event %s: %q", sent.EventID, text)
	var found stanza
	err := s.poll("a message to the contact on wamock, acked", func() (bool, error) {
		var list stanzaList
		if err := s.call("GET", fmt.Sprintf("%s/v1/stanzas?tag=message&since=%d", s.cfg.wamock, mark.Next), "", nil, &list); err != nil {
			return false, err
		}
		for _, st := range list.Stanzas {
			if addressedTo(st.To, to) && st.Ack != nil {
				found = st
				return true, nil
			}
		}
		return false, nil
	})
	return found, err
}

// addressedTo tells whether a stanza's to= is the contact, by PN or LID.
func addressedTo(to string, c contactInfo) bool {
	user, server, _ := strings.Cut(to, "@")
	user, _, _ = strings.Cut(user, ":")
	return user+"@"+server == c.PN || user+"@"+server == c.LID
}
