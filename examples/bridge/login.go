package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mdp/qrterminal/v3"
	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"
)

// connectTimeout bounds the wait for the login to complete.
const connectTimeout = 30 * time.Second

// pairing says how to link a new device.
type pairing struct {
	// Phone, when set, pairs by an 8-character code typed on the phone
	// instead of a QR code.
	Phone string
	// ShowQR and ShowCode put the QR code or pairing code in front of the
	// user.
	ShowQR   func(code string)
	ShowCode func(code string)
}

// terminalPairing shows codes on out, QR codes as half-block art.
func terminalPairing(out io.Writer, phone string) pairing {
	return pairing{
		Phone: phone,
		ShowQR: func(code string) {
			fmt.Fprintln(out, "Scan this QR code in WhatsApp → Settings → Linked devices → Link a device:")
			qrterminal.GenerateHalfBlock(code, qrterminal.L, out)
		},
		ShowCode: func(code string) {
			fmt.Fprintf(out, "On the phone, open WhatsApp → Settings → Linked devices → Link with phone number, and enter: %s\n", code)
		},
	}
}

// login connects a paired client, or pairs an unpaired one first.
func login(ctx context.Context, cli *whatsmeow.Client, p pairing, log zerolog.Logger) error {
	if cli.Store.ID != nil {
		return connectAndWait(ctx, cli)
	}
	return pair(ctx, cli, p, log)
}

// connectAndWait connects and waits until whatsmeow says the login is
// complete, so that the first line typed is not sent into a half-open
// session.
func connectAndWait(ctx context.Context, cli *whatsmeow.Client) error {
	result := watchLogin(cli)
	defer result.stop()
	if err := cli.Connect(); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	return result.wait(ctx)
}

// loginWatch reports the outcome of a login from whatsmeow's events.
type loginWatch struct {
	cli     *whatsmeow.Client
	id      uint32
	outcome chan error
}

func watchLogin(cli *whatsmeow.Client) *loginWatch {
	w := &loginWatch{cli: cli, outcome: make(chan error, 1)}
	report := func(err error) {
		select {
		case w.outcome <- err:
		default:
		}
	}
	w.id = cli.AddEventHandler(func(rawEvt any) {
		switch evt := rawEvt.(type) {
		case *events.Connected:
			report(nil)
		case *events.LoggedOut:
			report(fmt.Errorf("logged out by the server (%s): delete the device from the database to pair again", evt.Reason))
		case *events.ConnectFailure:
			report(fmt.Errorf("the server refused the login: %s (%s)", evt.Reason, evt.Message))
		case *events.TemporaryBan:
			report(fmt.Errorf("the account is temporarily banned: %s", evt))
		case *events.ClientOutdated:
			report(errors.New("the server says this whatsmeow version is outdated"))
		}
	})
	return w
}

func (w *loginWatch) wait(ctx context.Context) error {
	select {
	case err := <-w.outcome:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(connectTimeout):
		return fmt.Errorf("no login within %s", connectTimeout)
	}
}

func (w *loginWatch) stop() { w.cli.RemoveEventHandler(w.id) }

// pair links this client as a new device of the user's account. whatsmeow
// sends QR codes down the channel as soon as the server asks for a pairing
// (<pair-device>); a pairing code is requested once the first one arrived,
// because that proves the websocket is up.
func pair(ctx context.Context, cli *whatsmeow.Client, p pairing, log zerolog.Logger) error {
	qrChan, err := cli.GetQRChannel(ctx)
	if err != nil {
		return fmt.Errorf("prepare pairing: %w", err)
	}
	// After a successful pairing the server closes the socket and whatsmeow
	// logs in again by itself; this catches that second login.
	loggedIn := watchLogin(cli)
	defer loggedIn.stop()
	if err = cli.Connect(); err != nil {
		return fmt.Errorf("connect for pairing: %w", err)
	}
	codeShown := false
	for item := range qrChan {
		switch item.Event {
		case whatsmeow.QRChannelEventCode:
			if p.Phone == "" {
				p.ShowQR(item.Code)
				continue
			}
			if codeShown {
				continue
			}
			code, err := cli.PairPhone(ctx, p.Phone, true, whatsmeow.PairClientChrome, "Chrome (Linux)")
			if err != nil {
				return fmt.Errorf("request a pairing code for %s: %w", p.Phone, err)
			}
			p.ShowCode(code)
			codeShown = true
		case whatsmeow.QRChannelSuccess.Event:
			log.Info().Stringer("device", cli.Store.ID).Msg("Paired")
			return loggedIn.wait(ctx)
		case whatsmeow.QRChannelEventError:
			return fmt.Errorf("pairing failed: %w", item.Error)
		default:
			// timeout (codes ran out or the server hung up) and err-…
			return fmt.Errorf("pairing ended without success: %s", item.Event)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("pairing ended without success")
}
