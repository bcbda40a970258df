package wamock

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.mau.fi/libsignal/groups"
	"go.mau.fi/libsignal/protocol"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// Group is a group chat the server plays: our account and some contacts.
// whatsmeow's CreateGroup makes one (or AddGroup, for a group that already
// exists), GetGroupInfo reads it, UpdateGroupParticipants adds and removes
// members, and messages our client sends to it reach every member contact,
// which decrypts them with the sender key whatsmeow distributes
// (Contact.Messages shows them). Contact.SendGroupMessage sends one to us.
type Group struct {
	s   *Server
	jid types.JID

	mu      sync.Mutex
	name    string
	created time.Time
	// creator is nil when our account created the group.
	creator *Contact
	members []*Contact
	// notifications are the IDs of the w:gp2 notifications sent to our
	// devices, for Sync.
	notifications []string
	// tokens are the <privacy> tokens members were created or added with,
	// the last one each.
	tokens map[*Contact][]byte
}

// GroupOptions describes a group for AddGroup.
type GroupOptions struct {
	// Name is the group's subject.
	Name string
	// Members are the contacts in the group besides our account.
	Members []*Contact
	// Creator is the contact that created the group (an admin); nil means
	// our account did.
	Creator *Contact
}

// AddGroup makes a group that already exists, with our account as a member:
// whatsmeow learns of it when it asks (GetGroupInfo, or the group info it
// fetches before its first send to the group).
func (s *Server) AddGroup(opts GroupOptions) *Group {
	members := append([]*Contact(nil), opts.Members...)
	if opts.Creator != nil && !slices.Contains(members, opts.Creator) {
		members = append([]*Contact{opts.Creator}, members...)
	}
	return s.newGroup(opts.Name, opts.Creator, members)
}

func (s *Server) newGroup(name string, creator *Contact, members []*Contact) *Group {
	h := &s.helpers
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextGroup++
	g := &Group{
		s:       s,
		jid:     types.NewJID(fmt.Sprintf("1203630000%08d", h.nextGroup), types.GroupServer),
		name:    name,
		created: time.Now(),
		creator: creator,
		members: members,
	}
	if h.groups == nil {
		h.groups = make(map[string]*Group)
	}
	h.groups[g.jid.User] = g
	h.groupList = append(h.groupList, g)
	return g
}

// group finds a group by JID; nil if there is none.
func (s *Server) group(jid types.JID) *Group {
	if jid.Server != types.GroupServer {
		return nil
	}
	h := &s.helpers
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.groups[jid.User]
}

// Group finds a group by JID; nil if there is none.
func (s *Server) Group(jid types.JID) *Group { return s.group(jid) }

// Groups returns the groups in the order they were made.
func (s *Server) Groups() []*Group {
	h := &s.helpers
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*Group(nil), h.groupList...)
}

// JID is the group's JID (<id>@g.us).
func (g *Group) JID() types.JID { return g.jid }

// Name is the group's subject.
func (g *Group) Name() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.name
}

// Members returns the member contacts (our account aside).
func (g *Group) Members() []*Contact {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*Contact(nil), g.members...)
}

// HasMember tells whether the contact is in the group.
func (g *Group) HasMember(c *Contact) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Contains(g.members, c)
}

// lidAddressed tells whether the group addresses its members by LID, as
// groups do today; a group with a member without a LID uses phone numbers.
// The caller holds g.mu.
func (g *Group) lidAddressedLocked() bool {
	for _, c := range g.members {
		if c.lid.IsEmpty() {
			return false
		}
	}
	return true
}

// groupAddress is how a group names the contact: its LID in a LID-addressed
// group, else its PN.
func (c *Contact) groupAddress(g *Group) types.JID {
	if g == nil {
		return c.JID()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lidAddressedLocked() {
		return c.lid
	}
	return c.pn
}

// participantNode renders one member for group info and notifications: the
// address the group uses, with the other one beside it.
func participantNode(lidMode bool, pn, lid types.JID, typ string) waBinary.Node {
	attrs := waBinary.Attrs{}
	if lidMode {
		attrs["jid"] = lid
		attrs["phone_number"] = pn
	} else {
		attrs["jid"] = pn
		if !lid.IsEmpty() {
			attrs["lid"] = lid
		}
	}
	if typ != "" {
		attrs["type"] = typ
	}
	return waBinary.Node{Tag: "participant", Attrs: attrs}
}

// infoNode renders the group as the w:g2 IQs return it.
func (g *Group) infoNode() waBinary.Node {
	g.mu.Lock()
	defer g.mu.Unlock()
	lidMode := g.lidAddressedLocked()
	s := g.s
	own := participantNode(lidMode, s.ownPN, s.ownLID, "superadmin")
	creator := own.Attrs["jid"]
	if g.creator != nil {
		own.Attrs["type"] = "admin"
	}
	participants := []waBinary.Node{own}
	for _, c := range g.members {
		typ := ""
		if c == g.creator {
			typ = "superadmin"
			creator = participantNode(lidMode, c.pn, c.lid, "").Attrs["jid"]
		}
		participants = append(participants, participantNode(lidMode, c.pn, c.lid, typ))
	}
	mode := "pn"
	if lidMode {
		mode = "lid"
	}
	return waBinary.Node{Tag: "group", Attrs: waBinary.Attrs{
		"id":              g.jid.User,
		"creator":         creator,
		"creation":        g.created.Unix(),
		"subject":         g.name,
		"s_t":             g.created.Unix(),
		"s_o":             creator,
		"size":            len(participants),
		"addressing_mode": mode,
	}, Content: participants}
}

// handleGroupIQ answers <iq xmlns="w:g2">: create, query (info), add,
// remove, promote, demote and subject. Changes are then announced to our
// devices with w:gp2 notifications, as the real server does; other
// requests get an empty result.
func (s *Server) handleGroupIQ(ctx context.Context, c *conn, iq *waBinary.Node) {
	children := iq.GetChildren()
	if len(children) == 0 {
		s.reply(ctx, c, ResultIQ(iq))
		return
	}
	req := children[0]
	to := jidAttr(iq, "to")
	if req.Tag == "create" {
		g := s.createGroup(&req)
		info := g.infoNode()
		key := strAttr(&req, "key")
		created := g.announce(waBinary.Node{Tag: "create", Attrs: waBinary.Attrs{"type": "new", "key": key}, Content: []waBinary.Node{info}})
		s.reply(ctx, c, ResultIQ(iq, info))
		created.send(ctx)
		return
	}
	g := s.group(to)
	if g == nil {
		s.reply(ctx, c, ErrorIQ(iq, 404, "item-not-found"))
		return
	}
	switch req.Tag {
	case "query":
		s.reply(ctx, c, ResultIQ(iq, g.infoNode()))
	case "add", "remove", "promote", "demote":
		result, changed := g.changeMembers(req.Tag, &req)
		if len(changed) == 0 {
			s.reply(ctx, c, ResultIQ(iq, waBinary.Node{Tag: req.Tag, Content: result}))
			return
		}
		announced := g.announce(waBinary.Node{Tag: req.Tag, Content: changed})
		s.reply(ctx, c, ResultIQ(iq, waBinary.Node{Tag: req.Tag, Content: result}))
		announced.send(ctx)
	case "subject":
		name, _ := req.Content.([]byte)
		g.mu.Lock()
		g.name = string(name)
		g.mu.Unlock()
		announced := g.announce(waBinary.Node{Tag: "subject", Attrs: waBinary.Attrs{
			"subject": string(name), "s_t": time.Now().Unix(), "s_o": s.ownLID,
		}})
		s.reply(ctx, c, ResultIQ(iq))
		announced.send(ctx)
	default:
		s.reply(ctx, c, ResultIQ(iq))
	}
}

// createGroup makes the group a <create subject=.. key=..> asks for. JIDs
// that are not contacts are left out.
func (s *Server) createGroup(req *waBinary.Node) *Group {
	var members []*Contact
	tokens := make(map[*Contact][]byte)
	for _, p := range req.GetChildrenByTag("participant") {
		if c := s.contactFor(jidAttr(&p, "jid")); c != nil && !slices.Contains(members, c) {
			members = append(members, c)
			if token := childBytes(&p, "privacy"); token != nil {
				tokens[c] = token
			}
		}
	}
	g := s.newGroup(strAttr(req, "subject"), nil, members)
	g.mu.Lock()
	g.tokens = tokens
	g.mu.Unlock()
	return g
}

// ErrCodeMissingGroupToken is the error code of a participant whose add
// the server refused for want of a valid privacy token (RequireGroupTokens).
// No source shows the code the real server uses for it; wamock uses 463,
// the code of a message refused for a missing or invalid token.
const ErrCodeMissingGroupToken = 463

// RequireGroupTokens makes the server refuse to add a participant to a
// group unless valid accepts the token it came with in <privacy> (nil when
// it came with none): that participant gets ErrCodeMissingGroupToken and
// stays out. A nil valid accepts every add, the default.
func (s *Server) RequireGroupTokens(valid func(c *Contact, token []byte) bool) {
	s.mu.Lock()
	s.groupTokenRule = valid
	s.mu.Unlock()
}

// ParticipantToken returns the <privacy> token the contact was last created
// or added to the group with, nil if none.
func (g *Group) ParticipantToken(c *Contact) []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tokens[c]
}

// changeMembers applies <add|remove|promote|demote><participant jid=../>…
// and returns the reply's participants and those that changed. A JID that
// is no contact gets error 404; removing a non-member, 404 too.
func (g *Group) changeMembers(action string, req *waBinary.Node) (result, changed []waBinary.Node) {
	g.s.mu.Lock()
	rule := g.s.groupTokenRule
	g.s.mu.Unlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	lidMode := g.lidAddressedLocked()
	for _, p := range req.GetChildrenByTag("participant") {
		jid := jidAttr(&p, "jid")
		c := g.s.contactFor(jid)
		if c == nil || (action != "add" && !slices.Contains(g.members, c)) {
			result = append(result, waBinary.Node{Tag: "participant", Attrs: waBinary.Attrs{"jid": jid, "error": 404}})
			continue
		}
		switch action {
		case "add":
			token := childBytes(&p, "privacy")
			if rule != nil && !rule(c, token) {
				result = append(result, waBinary.Node{Tag: "participant", Attrs: waBinary.Attrs{"jid": jid, "error": ErrCodeMissingGroupToken}})
				continue
			}
			if token != nil {
				if g.tokens == nil {
					g.tokens = make(map[*Contact][]byte)
				}
				g.tokens[c] = token
			}
			if !slices.Contains(g.members, c) {
				g.members = append(g.members, c)
			}
		case "remove":
			g.members = slices.DeleteFunc(g.members, func(m *Contact) bool { return m == c })
		}
		node := participantNode(lidMode, c.pn, c.lid, "")
		result = append(result, node)
		changed = append(changed, node)
	}
	return result, changed
}

// announce prepares a w:gp2 notification about the group, by our account,
// and notes it for Sync and WaitHandled before the IQ's reply goes out: a
// test that calls Sync as soon as whatsmeow returns must find it. Its send
// method delivers it (queued for offline devices) after the reply.
func (g *Group) announce(change waBinary.Node) announcement {
	id := newStanzaID()
	g.mu.Lock()
	g.notifications = append(g.notifications, id)
	actor := g.s.ownPN
	if g.lidAddressedLocked() {
		actor = g.s.ownLID
	}
	g.mu.Unlock()
	g.s.expectDelivery(id, "notification")
	return announcement{g: g, node: waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
		"type":        "w:gp2",
		"from":        g.jid,
		"participant": actor,
		"id":          id,
		"t":           time.Now().Unix(),
	}, Content: []waBinary.Node{change}}}
}

type announcement struct {
	g    *Group
	node waBinary.Node
}

func (a announcement) send(ctx context.Context) {
	if err := a.g.s.deliverAll(ctx, a.node); err != nil {
		a.g.s.log.Warn().Err(err).Msg("Failed to deliver a group notification")
	}
	a.g.s.deliveryDone(strAttr(&a.node, "id"))
}

// Sync waits until our devices have handled every notification the server
// sent about the group (creation, members added or removed, subject): the
// real server announces a change after answering the IQ, so whatsmeow's
// UpdateGroupParticipants returns before its cache of the members knows the
// change. Call Sync before sending to the group after such a change.
func (g *Group) Sync(ctx context.Context) error {
	g.mu.Lock()
	ids := append([]string(nil), g.notifications...)
	g.mu.Unlock()
	var errs []error
	for _, id := range ids {
		errs = append(errs, g.s.WaitHandled(ctx, id))
	}
	return errors.Join(errs...)
}

// ParticipantTokens returns the privacy tokens in a group IQ our client
// sent (<create> or <add>): <participant jid=..><privacy>TOKEN</privacy>,
// keyed by the participant JID as sent. Newer whatsmeow versions attach a
// contact's tctoken there; nil when there are none.
func ParticipantTokens(iq *waBinary.Node) map[types.JID][]byte {
	var out map[types.JID][]byte
	for _, req := range iq.GetChildren() {
		for _, p := range req.GetChildrenByTag("participant") {
			if token := childBytes(&p, "privacy"); token != nil {
				if out == nil {
					out = make(map[types.JID][]byte)
				}
				out[jidAttr(&p, "jid")] = token
			}
		}
	}
	return out
}

// handOverGroupMessage gives a message our client sent to a group to every
// member contact.
func (s *Server) handOverGroupMessage(ctx context.Context, msg *waBinary.Node, from uint16) {
	g := s.group(jidAttr(msg, "to"))
	if g == nil {
		s.recordError(fmt.Errorf("message %s to unknown group %s", strAttr(msg, "id"), jidAttr(msg, "to")))
		return
	}
	skmsg := groupCiphertext(msg)
	for _, c := range g.Members() {
		if _, err := c.decryptGroupStanza(ctx, g, msg, from, skmsg); err != nil {
			s.recordError(fmt.Errorf("contact %s could not decrypt group message from device %d: %w", c.pn.User, from, err))
		}
	}
}

func groupCiphertext(msg *waBinary.Node) []byte {
	for _, child := range msg.GetChildrenByTag("enc") {
		if strAttr(&child, "type") == "skmsg" {
			b, _ := child.Content.([]byte)
			return b
		}
	}
	return nil
}

// decryptGroupStanza takes the sender key our device distributed in the
// message (a pkmsg or msg per device of the contact, when whatsmeow
// included one) and decrypts the group ciphertext with it.
func (c *Contact) decryptGroupStanza(ctx context.Context, g *Group, msg *waBinary.Node, fromDevice uint16, skmsg []byte) (*waE2E.Message, error) {
	id := strAttr(msg, "id")
	c.decryptMu.Lock()
	defer c.decryptMu.Unlock()
	if cached, ok := c.alreadyDecrypted(id); ok {
		return cached, nil
	}
	if skmsg == nil {
		return nil, fmt.Errorf("wamock: group message %s has no skmsg", id)
	}
	name := protocol.NewSenderKeyName(g.jid.String(), c.s.ownAddr(fromDevice))
	for _, target := range participantEncs(msg) {
		if !c.ownsJID(target.jid) {
			continue
		}
		dist, err := c.openEnc(ctx, target, fromDevice)
		if err != nil {
			return nil, err
		}
		if skdm := dist.GetSenderKeyDistributionMessage().GetAxolotlSenderKeyDistributionMessage(); skdm != nil {
			if err = c.device(target.jid.Device).processSenderKey(ctx, name, skdm); err != nil {
				return nil, fmt.Errorf("device %d: %w", target.jid.Device, err)
			}
		}
	}
	var firstErr error
	for _, num := range c.deviceIDs() {
		plaintext, err := c.device(num).groupDecrypt(ctx, name, skmsg)
		if err != nil {
			firstErr = cmpErr(firstErr, fmt.Errorf("device %d: %w", num, err))
			continue
		}
		var parsed waE2E.Message
		if err = proto.Unmarshal(plaintext, &parsed); err != nil {
			return nil, fmt.Errorf("unmarshal group message: %w", err)
		}
		c.mu.Lock()
		c.decrypted[id] = &parsed
		c.received = append(c.received, &parsed)
		c.mu.Unlock()
		return &parsed, nil
	}
	return nil, fmt.Errorf("wamock: decrypt group message %s for %s: %w", id, c.pn.User, firstErr)
}

// SendGroupText sends a text message from the contact to the group.
func (c *Contact) SendGroupText(ctx context.Context, g *Group, text string) (types.MessageID, error) {
	return c.SendGroupMessage(ctx, g, &waE2E.Message{Conversation: proto.String(text)})
}

// SendGroupMessage sends msg from the contact's primary device to the group,
// as a real member does: encrypted once with the contact's sender key
// (skmsg), with that key sent along to each of our devices over the
// contact's 1:1 Signal session. It is delivered to our devices (queued for
// the offline ones); whatsmeow emits events.Message with Info.Chat the
// group and Info.Sender the contact. It returns the message ID.
func (c *Contact) SendGroupMessage(ctx context.Context, g *Group, msg *waE2E.Message) (types.MessageID, error) {
	if !g.HasMember(c) {
		return "", fmt.Errorf("wamock: %s is not a member of %s", c.pn.User, g.jid)
	}
	plaintext, err := proto.Marshal(msg)
	if err != nil {
		return "", fmt.Errorf("wamock: marshal message: %w", err)
	}
	targets := c.s.keyedDevices()
	if len(targets) == 0 {
		return "", ErrNoOwnDevices
	}
	sender := c.device(0)
	name := protocol.NewSenderKeyName(g.jid.String(), protocol.NewSignalAddress(c.JID().User, 0))
	skdm, ciphertext, err := sender.groupEncrypt(ctx, name, padPlaintext(plaintext))
	if err != nil {
		return "", fmt.Errorf("wamock: %s: %w", c.pn.User, err)
	}
	// whatsmeow takes the key from each message that carries one, so it
	// goes along every time rather than tracking who has it.
	distribution, err := proto.Marshal(&waE2E.Message{SenderKeyDistributionMessage: &waE2E.SenderKeyDistributionMessage{
		GroupID:                             proto.String(g.jid.String()),
		AxolotlSenderKeyDistributionMessage: skdm,
	}})
	if err != nil {
		return "", fmt.Errorf("wamock: marshal sender key: %w", err)
	}
	id := newMessageID()
	g.mu.Lock()
	lidMode := g.lidAddressedLocked()
	g.mu.Unlock()
	for _, num := range targets {
		encType, dm, err := sender.encrypt(ctx, c.s.ownAddr(num), c.s.ownBundleFunc(num), distribution)
		if err != nil {
			return "", fmt.Errorf("wamock: %s: %w", c.pn.User, err)
		}
		attrs := waBinary.Attrs{
			"id":     id,
			"from":   g.jid,
			"t":      time.Now().Unix(),
			"type":   "text",
			"notify": c.pushName,
		}
		if lidMode {
			attrs["addressing_mode"] = "lid"
			attrs["participant"] = c.lid
			attrs["participant_pn"] = c.pn
		} else {
			attrs["addressing_mode"] = "pn"
			attrs["participant"] = c.pn
			if !c.lid.IsEmpty() {
				attrs["participant_lid"] = c.lid
			}
		}
		// The sender key must come first: whatsmeow decrypts the <enc>s in
		// order.
		node := waBinary.Node{Tag: "message", Attrs: attrs, Content: []waBinary.Node{
			{Tag: "enc", Attrs: waBinary.Attrs{"v": "2", "type": encType}, Content: dm},
			{Tag: "enc", Attrs: waBinary.Attrs{"v": "2", "type": "skmsg"}, Content: ciphertext},
		}}
		if err = c.s.deliver(ctx, num, node); err != nil {
			return "", err
		}
	}
	return id, nil
}

// SendGroupTextAndWait is SendGroupText followed by WaitHandled.
func (c *Contact) SendGroupTextAndWait(ctx context.Context, g *Group, text string) (types.MessageID, error) {
	id, err := c.SendGroupText(ctx, g, text)
	if err != nil {
		return id, err
	}
	return id, c.s.WaitHandled(ctx, id)
}

// processSenderKey stores a sender key another device distributed.
func (p *peerDevice) processSenderKey(ctx context.Context, name *protocol.SenderKeyName, serialized []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	skdm, err := protocol.NewSenderKeyDistributionMessageFromBytes(serialized, signalSerializer.SenderKeyDistributionMessage)
	if err != nil {
		return fmt.Errorf("parse sender key distribution message: %w", err)
	}
	if err = groups.NewGroupSessionBuilder(p.store, signalSerializer).Process(ctx, name, skdm); err != nil {
		return fmt.Errorf("process sender key distribution message: %w", err)
	}
	return nil
}

// groupDecrypt opens a group ciphertext (skmsg) with a stored sender key and
// strips the padding.
func (p *peerDevice) groupDecrypt(ctx context.Context, name *protocol.SenderKeyName, ciphertext []byte) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	msg, err := protocol.NewSenderKeyMessageFromBytes(ciphertext, signalSerializer.SenderKeyMessage)
	if err != nil {
		return nil, fmt.Errorf("parse sender key message: %w", err)
	}
	builder := groups.NewGroupSessionBuilder(p.store, signalSerializer)
	plaintext, err := groups.NewGroupCipher(builder, name, p.store).Decrypt(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("decrypt group message: %w", err)
	}
	return unpadPlaintext(plaintext)
}

// groupEncrypt encrypts plaintext with the device's own sender key for the
// group (made on first use) and returns the key's distribution message with
// the ciphertext.
func (p *peerDevice) groupEncrypt(ctx context.Context, name *protocol.SenderKeyName, plaintext []byte) (skdm, ciphertext []byte, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	builder := groups.NewGroupSessionBuilder(p.store, signalSerializer)
	dist, err := builder.Create(ctx, name)
	if err != nil {
		return nil, nil, fmt.Errorf("create sender key: %w", err)
	}
	encrypted, err := groups.NewGroupCipher(builder, name, p.store).Encrypt(ctx, plaintext)
	if err != nil {
		return nil, nil, fmt.Errorf("encrypt group message: %w", err)
	}
	skm, ok := encrypted.(*protocol.SenderKeyMessage)
	if !ok {
		return nil, nil, fmt.Errorf("group cipher returned %T", encrypted)
	}
	return dist.Serialize(), skm.SignedSerialize(), nil
}
