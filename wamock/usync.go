package wamock

import (
	"strings"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// handleUsync answers <iq xmlns="usync"><usync><query>…</query><list><user
// jid=…/>…</list></usync>. It understands the devices, lid and contact
// protocols; other query children get empty elements.
func (s *Server) handleUsync(iq *waBinary.Node) *waBinary.Node {
	usync, ok := iq.GetOptionalChildByTag("usync")
	if !ok {
		return ErrorIQ(iq, 400, "bad-request")
	}
	query := usync.GetChildByTag("query")
	list := usync.GetChildByTag("list")
	var users []waBinary.Node
	for _, req := range list.GetChildren() {
		if req.Tag != "user" {
			continue
		}
		jid := jidAttr(&req, "jid")
		if jid.IsEmpty() {
			// Phone-number lookups (<contact>+1555…</contact>) carry no jid.
			contactNode, ok := req.GetOptionalChildByTag("contact")
			if !ok {
				continue
			}
			jid = types.NewJID(phoneQueryUser(contactNode.Content), types.DefaultUserServer)
		}
		user := s.usyncUser(jid, query.GetChildren())
		echoContactQuery(&user, &req)
		users = append(users, user)
	}
	attrs := waBinary.Attrs{}
	for _, key := range []string{"sid", "mode", "context", "last", "index"} {
		if v, ok := usync.Attrs[key]; ok {
			attrs[key] = v
		}
	}
	return ResultIQ(iq, waBinary.Node{Tag: "usync", Attrs: attrs, Content: []waBinary.Node{
		{Tag: "result"},
		{Tag: "list", Content: users},
	}})
}

// phoneQueryUser is the phone number of a <contact> lookup: "+1555…", or
// "+1555…@c.us" as IsOnWhatsApp sends it.
func phoneQueryUser(content any) string {
	var q string
	switch c := content.(type) {
	case []byte:
		q = string(c)
	case string:
		q = c
	}
	return strings.TrimPrefix(strings.TrimSuffix(q, "@"+types.LegacyUserServer), "+")
}

// echoContactQuery copies a phone-number lookup's query into the answer's
// <contact> element, as the real server does: IsOnWhatsApp reports it as
// the response's Query.
func echoContactQuery(user, req *waBinary.Node) {
	query, ok := req.GetOptionalChildByTag("contact")
	if !ok || query.Content == nil {
		return
	}
	children := user.GetChildren()
	for i := range children {
		if children[i].Tag == "contact" {
			children[i].Content = query.Content
		}
	}
}

func (s *Server) usyncUser(jid types.JID, protocols []waBinary.Node) waBinary.Node {
	jid = jid.ToNonAD()
	contact := s.contactFor(jid)
	known := contact != nil || s.isOwnUser(jid)
	var content []waBinary.Node
	for _, proto := range protocols {
		switch proto.Tag {
		case "devices":
			content = append(content, s.usyncDevices(jid, contact))
		case "lid":
			lid := s.lidFor(jid, contact)
			if !lid.IsEmpty() {
				content = append(content, waBinary.Node{Tag: "lid", Attrs: waBinary.Attrs{"val": lid}})
			} else {
				content = append(content, waBinary.Node{Tag: "lid"})
			}
		case "contact":
			typ := "out"
			if known {
				typ = "in"
			}
			content = append(content, waBinary.Node{Tag: "contact", Attrs: waBinary.Attrs{"type": typ}})
		default:
			content = append(content, waBinary.Node{Tag: proto.Tag})
		}
	}
	return waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}, Content: content}
}

// lidFor returns the LID of a PN user we know, or the empty JID.
func (s *Server) lidFor(jid types.JID, contact *Contact) types.JID {
	if jid.Server != types.DefaultUserServer {
		return types.EmptyJID
	}
	if s.isOwnUser(jid) {
		return s.ownLID
	}
	if contact != nil {
		return contact.LID()
	}
	return types.EmptyJID
}

// usyncDevices lists the devices of a user. For our own account that is the
// phone (device 0) and every companion that uploaded keys; whatsmeow skips
// its own device itself.
func (s *Server) usyncDevices(jid types.JID, contact *Contact) waBinary.Node {
	var ids []uint16
	switch {
	case s.isOwnUser(jid):
		ids = append(ids, 0)
		s.mu.Lock()
		for _, d := range s.sortedDevicesLocked() {
			if d.hasKeys && d.num != 0 {
				ids = append(ids, d.num)
			}
		}
		s.mu.Unlock()
	case contact != nil:
		ids = contact.deviceIDs()
	}
	devices := make([]waBinary.Node, 0, len(ids))
	for _, id := range ids {
		attrs := waBinary.Attrs{"id": int(id)}
		if id != 0 {
			attrs["key-index"] = int(id)
		}
		devices = append(devices, waBinary.Node{Tag: "device", Attrs: attrs})
	}
	return waBinary.Node{Tag: "devices", Content: []waBinary.Node{
		{Tag: "device-list", Content: devices},
		{Tag: "key-index-list", Attrs: waBinary.Attrs{"ts": time.Now().Unix()}},
	}}
}
