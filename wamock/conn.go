package wamock

import (
	"bytes"
	"context"
	"crypto/cipher"
	"fmt"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	"google.golang.org/protobuf/proto"
)

// handshakeTimeout bounds how long a connection may sit in the handshake, so
// a misbehaving client cannot hang a test.
var handshakeTimeout = 10 * time.Second

// maxFrame is the largest frame the 3-byte length prefix can express.
const maxFrame = 1<<24 - 1

// conn is one client websocket connection.
type conn struct {
	s   *Server
	ws  *websocket.Conn
	log zerolog.Logger
	// seq orders connections by age, so the newest pairing client wins.
	seq uint64

	// Reading happens on the run goroutine only.
	buf          []byte
	sawPrologue  bool
	readKey      cipher.AEAD
	readCounter  uint32
	frameCounter int

	writeMu      sync.Mutex
	writeKey     cipher.AEAD
	writeCounter uint32

	stateMu sync.Mutex
	device  uint16
	payload *waWa6.ClientPayload
	// clientStatic is the client's Noise static key, which a QR code shows
	// and ScanQR checks.
	clientStatic [32]byte
	ready        bool // handshake done and <success> sent
	active       bool // the client sent its passive/active IQ, pending stanzas flushed
	// pair is set for a client that registers a new device instead of
	// logging in; it stays set until the client hangs up.
	pair *pairing
}

func newConn(s *Server, ws *websocket.Conn) *conn {
	// A frame can be up to 16 MiB and several may share one websocket message.
	ws.SetReadLimit(4 << 24)
	return &conn{s: s, ws: ws, log: s.log, seq: s.connSeq.Add(1)}
}

func (c *conn) loggedIn() bool {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return c.ready
}

func (c *conn) deviceNum() uint16 {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return c.device
}

func (c *conn) closeNow() {
	_ = c.ws.CloseNow()
}

func (c *conn) run(ctx context.Context) {
	defer c.ws.CloseNow()
	if err := c.handshake(ctx); err != nil {
		// Drop the connection without a closing handshake, which could
		// wait seconds for a peer that is already gone.
		c.s.recordError(fmt.Errorf("handshake: %w", err))
		return
	}
	if err := c.login(ctx); err != nil {
		c.s.recordError(fmt.Errorf("login: %w", err))
		return
	}
	for {
		frame, err := c.readFrame(ctx)
		if err != nil {
			if !isClosedErr(err) && ctx.Err() == nil {
				c.s.recordError(fmt.Errorf("device %d: read: %w", c.deviceNum(), err))
			}
			c.log.Debug().Err(err).Msg("Connection closed")
			return
		}
		node, err := c.decodeFrame(frame)
		if err != nil {
			// A real server drops a connection that sends garbage; so do we,
			// and we report it so the test sees it instead of a hang.
			c.s.recordError(fmt.Errorf("device %d: frame %d: %w", c.deviceNum(), c.frameCounter, err))
			return
		}
		c.log.Debug().Str("dir", "recv").Msg(nodeLogString(node))
		c.s.obs.addReceived(node, c.deviceNum())
		c.s.handleNode(ctx, c, node)
	}
}

func (c *conn) decodeFrame(frame []byte) (*waBinary.Node, error) {
	c.frameCounter++
	plaintext, err := c.readKey.Open(nil, nonce(c.readCounter), frame, nil)
	c.readCounter++
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	unpacked, err := waBinary.Unpack(plaintext)
	if err != nil {
		return nil, fmt.Errorf("unpack: %w", err)
	}
	node, err := waBinary.Unmarshal(unpacked)
	if err != nil {
		return nil, fmt.Errorf("decode node: %w", err)
	}
	return node, nil
}

// readFrame returns the next length-prefixed frame, reading websocket
// messages as needed. The very first bytes must be the WA prologue.
func (c *conn) readFrame(ctx context.Context) ([]byte, error) {
	for {
		if !c.sawPrologue && len(c.buf) >= len(waPrologue) {
			if !bytes.Equal(c.buf[:len(waPrologue)], waPrologue) {
				return nil, fmt.Errorf("bad prologue %x", c.buf[:len(waPrologue)])
			}
			c.buf = c.buf[len(waPrologue):]
			c.sawPrologue = true
		}
		if c.sawPrologue && len(c.buf) >= 3 {
			length := int(c.buf[0])<<16 | int(c.buf[1])<<8 | int(c.buf[2])
			if len(c.buf) >= 3+length {
				frame := make([]byte, length)
				copy(frame, c.buf[3:3+length])
				c.buf = c.buf[3+length:]
				return frame, nil
			}
		}
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		if typ != websocket.MessageBinary {
			return nil, fmt.Errorf("unexpected websocket message type %v", typ)
		}
		c.buf = append(c.buf, data...)
	}
}

func (c *conn) writeFrame(ctx context.Context, data []byte) error {
	if len(data) > maxFrame {
		return fmt.Errorf("frame of %d bytes is too large", len(data))
	}
	frame := make([]byte, 3+len(data))
	frame[0], frame[1], frame[2] = byte(len(data)>>16), byte(len(data)>>8), byte(len(data))
	copy(frame[3:], data)
	return c.ws.Write(ctx, websocket.MessageBinary, frame)
}

// handshake runs the responder side of WhatsApp's Noise XX.
func (c *conn) handshake(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()

	helloFrame, err := c.readFrame(ctx)
	if err != nil {
		return fmt.Errorf("read client hello: %w", err)
	}
	var hello waWa6.HandshakeMessage
	if err = proto.Unmarshal(helloFrame, &hello); err != nil {
		return fmt.Errorf("parse client hello: %w", err)
	}
	clientEphemeral := hello.GetClientHello().GetEphemeral()
	if len(clientEphemeral) != 32 {
		return fmt.Errorf("client hello has a %d-byte ephemeral key", len(clientEphemeral))
	}

	ns := newNoiseState()
	ns.mixHash(clientEphemeral)
	ephemeral := keys.NewKeyPair()
	ns.mixHash(ephemeral.Pub[:])
	if err = ns.mixDH(ephemeral.Priv, clientEphemeral); err != nil {
		return err
	}
	encStatic := ns.encrypt(c.s.static.Pub[:])
	if err = ns.mixDH(c.s.static.Priv, clientEphemeral); err != nil {
		return err
	}
	encCert := ns.encrypt(c.s.certChain)
	serverHello, err := proto.Marshal(&waWa6.HandshakeMessage{ServerHello: &waWa6.HandshakeMessage_ServerHello{
		Ephemeral: ephemeral.Pub[:],
		Static:    encStatic,
		Payload:   encCert,
	}})
	if err != nil {
		return fmt.Errorf("marshal server hello: %w", err)
	}
	if err = c.writeFrame(ctx, serverHello); err != nil {
		return fmt.Errorf("send server hello: %w", err)
	}

	finishFrame, err := c.readFrame(ctx)
	if err != nil {
		// This is where a client that rejected our certificate hangs up.
		return fmt.Errorf("read client finish (client gave up on the handshake?): %w", err)
	}
	var finish waWa6.HandshakeMessage
	if err = proto.Unmarshal(finishFrame, &finish); err != nil {
		return fmt.Errorf("parse client finish: %w", err)
	}
	clientStatic, err := ns.decrypt(finish.GetClientFinish().GetStatic())
	if err != nil {
		return fmt.Errorf("decrypt client static key: %w", err)
	} else if len(clientStatic) != 32 {
		return fmt.Errorf("client static key has %d bytes", len(clientStatic))
	}
	if err = ns.mixDH(ephemeral.Priv, clientStatic); err != nil {
		return err
	}
	payloadBytes, err := ns.decrypt(finish.GetClientFinish().GetPayload())
	if err != nil {
		return fmt.Errorf("decrypt client payload: %w", err)
	}
	var payload waWa6.ClientPayload
	if err = proto.Unmarshal(payloadBytes, &payload); err != nil {
		return fmt.Errorf("parse client payload: %w", err)
	}
	if c.readKey, c.writeKey, err = ns.split(); err != nil {
		return err
	}
	c.stateMu.Lock()
	c.payload = &payload
	c.clientStatic = [32]byte(clientStatic)
	c.stateMu.Unlock()
	return nil
}

// login checks who connected and sends <success>, or starts a pairing for
// a client that registers a new device.
func (c *conn) login(ctx context.Context) error {
	c.stateMu.Lock()
	payload := c.payload
	c.stateMu.Unlock()
	if payload.Username == nil {
		// An unpaired store sends DevicePairingData instead of a username.
		return c.startPairing(ctx, payload)
	}
	user := fmt.Sprintf("%d", payload.GetUsername())
	if user != c.s.ownPN.User {
		_ = c.send(ctx, waBinary.Node{Tag: "failure", Attrs: waBinary.Attrs{"reason": 401}})
		return fmt.Errorf("client logged in as %s, but the account is %s", user, c.s.ownPN.User)
	}
	device := uint16(payload.GetDevice())
	c.s.deviceConnected(device)
	c.s.obs.resetUnanswered(device)
	c.stateMu.Lock()
	c.device = device
	c.stateMu.Unlock()
	c.log = c.s.log.With().Uint16("device", device).Logger()

	lid := c.s.ownLID
	lid.Device = device
	err := c.send(ctx, waBinary.Node{Tag: "success", Attrs: waBinary.Attrs{
		"t":            time.Now().Unix(),
		"lid":          lid,
		"location":     "wamock",
		"creation":     time.Now().Add(-24 * time.Hour).Unix(),
		"display_name": "",
	}})
	if err != nil {
		return fmt.Errorf("send success: %w", err)
	}
	c.stateMu.Lock()
	c.ready = true
	c.stateMu.Unlock()
	c.log.Debug().Msg("Client logged in")
	return nil
}

// send marshals, encrypts and writes one stanza.
func (c *conn) send(ctx context.Context, node waBinary.Node) error {
	data, err := waBinary.Marshal(node)
	if err != nil {
		return fmt.Errorf("marshal <%s>: %w", node.Tag, err)
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	ciphertext := c.writeKey.Seal(nil, nonce(c.writeCounter), data, nil)
	c.writeCounter++
	c.log.Debug().Str("dir", "send").Msg(nodeLogString(&node))
	// Record before writing: the client may answer (ack) before writeFrame
	// returns, and an ack the observer reads before it knows the stanza
	// would leave the id unanswered forever (WaitIdle then waits out its
	// timeout), and Sent would briefly lack a stanza the client has seen.
	device := c.deviceNum()
	c.s.obs.addSent(&node, device)
	if err = c.writeFrame(ctx, ciphertext); err != nil {
		// The client never saw it, so it must not wait for an answer.
		c.s.obs.removeSent(&node, device)
		return fmt.Errorf("write <%s>: %w", node.Tag, err)
	}
	if hook := c.s.afterWrite; hook != nil {
		hook(&node)
	}
	return nil
}

// markActive records that the client finished its login sequence and
// returns whether it was the first time.
func (c *conn) markActive() bool {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	first := !c.active
	c.active = true
	return first
}

func (c *conn) isActive() bool {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return c.active
}

// jidAttr returns the attribute as a JID, or the empty JID.
func jidAttr(node *waBinary.Node, key string) types.JID {
	jid, _ := node.Attrs[key].(types.JID)
	return jid
}

func strAttr(node *waBinary.Node, key string) string {
	switch v := node.Attrs[key].(type) {
	case string:
		return v
	case types.JID:
		return v.String()
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}
