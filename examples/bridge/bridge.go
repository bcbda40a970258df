package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken"
)

// Bridge relays lines between a terminal and one WhatsApp chat. Real mode
// and the demo run this same code; only where the client connects to
// differs.
type Bridge struct {
	cli    *whatsmeow.Client
	plugin *tctoken.Plugin
	chat   types.JID
	log    zerolog.Logger
	// now is the plugin's clock, so that /status agrees with the plugin
	// when the demo moves time forward.
	now func() time.Time

	// OnIncoming, when set, is called after an incoming message of the
	// chat was printed. The demo uses it to keep its story in order.
	OnIncoming func(info types.MessageInfo, text string)

	outMu sync.Mutex
	out   io.Writer
}

func newBridge(cli *whatsmeow.Client, plugin *tctoken.Plugin, chat types.JID, out io.Writer, log zerolog.Logger, now func() time.Time) *Bridge {
	if now == nil {
		now = time.Now
	}
	return &Bridge{cli: cli, plugin: plugin, chat: chat, out: out, log: log, now: now}
}

// printf writes one line to the terminal. Events arrive on whatsmeow's
// goroutine while the input loop runs on another; the lock keeps their
// lines whole.
func (b *Bridge) printf(format string, args ...any) {
	b.outMu.Lock()
	defer b.outMu.Unlock()
	fmt.Fprintf(b.out, format+"\n", args...)
}

// Chat is the chat the bridge relays.
func (b *Bridge) Chat() types.JID { return b.chat }

// Send sends one line of text to the chat through the plugin, which is the
// drop-in for Client.SendMessage that attaches the right token.
func (b *Bridge) Send(ctx context.Context, text string) (whatsmeow.SendResponse, error) {
	msg := &waE2E.Message{Conversation: proto.String(text)}
	resp, err := b.plugin.SendMessage(ctx, b.chat, msg)
	switch {
	case err == nil:
		b.printf(">> sent (%s)", resp.ID)
	case errors.Is(err, whatsmeow.ErrServerReturnedError) && strings.Contains(err.Error(), "463"):
		// 463 is the token error; say so, because whatsmeow's text does not.
		b.printf("!! the server refused the message with 463: no valid token for this chat (see /status)")
	default:
		b.printf("!! not sent: %v", err)
	}
	if err != nil {
		return resp, fmt.Errorf("send to %s: %w", b.chat, err)
	}
	return resp, nil
}

// HandleLine acts on one line typed by the user and reports whether the
// bridge should stop.
func (b *Bridge) HandleLine(ctx context.Context, line string) (quit bool) {
	line = strings.TrimRight(line, "\r\n")
	switch trimmed := strings.TrimSpace(line); {
	case trimmed == "":
		return false
	case trimmed == "/quit":
		return true
	case trimmed == "/status":
		b.printStatus(ctx)
		return false
	case trimmed == "/help":
		b.printHelp()
		return false
	case strings.HasPrefix(trimmed, "//"):
		// A doubled slash sends a line that starts with a slash.
		line = strings.TrimPrefix(strings.TrimLeft(line, " \t"), "/")
	case strings.HasPrefix(trimmed, "/"):
		b.printf("unknown command %s", strings.Fields(trimmed)[0])
		b.printHelp()
		return false
	}
	// The error was printed; a failed send does not end the session.
	_, _ = b.Send(ctx, line)
	return false
}

func (b *Bridge) printHelp() {
	b.printf("Type a line and press Enter to send it to %s.", b.chat)
	b.printf("  /status  what the plugin holds for this chat and what the next message carries")
	b.printf("  /quit    leave (Ctrl-D works too)")
	b.printf("  //text   send a line starting with a slash")
}

// Run reads lines from in until it ends, /quit, or ctx is done.
func (b *Bridge) Run(ctx context.Context, in io.Reader) error {
	lines := make(chan string)
	readErr := make(chan error, 1)
	go func() {
		defer close(lines)
		scanner := bufio.NewScanner(in)
		for scanner.Scan() {
			select {
			case lines <- scanner.Text():
			case <-ctx.Done():
				return
			}
		}
		readErr <- scanner.Err()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				select {
				case err := <-readErr:
					if err != nil {
						return fmt.Errorf("read input: %w", err)
					}
				default:
				}
				return nil
			}
			if b.HandleLine(ctx, line) {
				return nil
			}
		}
	}
}

// handleEvent prints the chat's incoming text messages. It is registered
// with Client.AddEventHandler next to the plugin's own handler.
func (b *Bridge) handleEvent(rawEvt any) {
	switch evt := rawEvt.(type) {
	case *events.Message:
		if !b.isOurChat(evt.Info) {
			return
		}
		text := messageText(evt.Message)
		if text == "" {
			b.log.Debug().Str("message_id", evt.Info.ID).Msg("Ignoring a non-text message in the chat")
			return
		}
		who := evt.Info.PushName
		if who == "" {
			who = evt.Info.Sender.User
		}
		if evt.Info.IsFromMe {
			who = "you (another device)"
		}
		b.printf("<< %s: %s", who, text)
		if b.OnIncoming != nil {
			b.OnIncoming(evt.Info, text)
		}
	case *events.IdentityChange:
		// The plugin reissues our token on its own; telling the user is
		// what a bridge would do with the safety-number change.
		if b.sameUser(evt.JID) {
			b.printf("-- the contact's security code changed (reinstall or new phone)")
		}
	}
}

// isOurChat matches a message to the bridged chat, whichever of the
// contact's addresses (phone number or LID) either side used.
func (b *Bridge) isOurChat(info types.MessageInfo) bool {
	if info.IsGroup {
		return info.Chat.ToNonAD() == b.chat
	}
	candidates := []types.JID{info.Chat}
	if info.IsFromMe {
		candidates = append(candidates, info.RecipientAlt)
	} else {
		candidates = append(candidates, info.SenderAlt)
	}
	for _, jid := range candidates {
		if !jid.IsEmpty() && b.sameUser(jid) {
			return true
		}
	}
	return false
}

// sameUser says whether jid is the bridged chat, directly or through
// whatsmeow's LID map.
func (b *Bridge) sameUser(jid types.JID) bool {
	jid = jid.ToNonAD()
	if jid == b.chat {
		return true
	}
	ctx := context.Background()
	var alt types.JID
	var err error
	switch jid.Server {
	case types.HiddenUserServer:
		alt, err = b.cli.Store.LIDs.GetPNForLID(ctx, jid)
	case types.DefaultUserServer:
		alt, err = b.cli.Store.LIDs.GetLIDForPN(ctx, jid)
	default:
		return false
	}
	if err != nil {
		b.log.Warn().Err(err).Stringer("jid", jid).Msg("Failed to read the LID map")
		return false
	}
	return !alt.IsEmpty() && alt.ToNonAD() == b.chat
}

// messageText is the text of a plain or extended text message.
func messageText(msg *waE2E.Message) string {
	if text := msg.GetConversation(); text != "" {
		return text
	}
	return msg.GetExtendedTextMessage().GetText()
}
