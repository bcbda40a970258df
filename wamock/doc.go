// Package wamock is a fake WhatsApp server for testing code built on
// go.mau.fi/whatsmeow.
//
// The real, unmodified whatsmeow client connects to it over its real
// websocket and Noise transport, logs in with a device store that
// [Server.NewDevice] prepared, uploads its prekeys and reaches
// events.Connected. From there the server answers the requests whatsmeow
// makes (usync device lists, prekey bundles, message acks, app state,
// media connections, privacy and AB-props IQs) and lets a test play the
// other side: fake contacts with real Signal identities
// ([Server.AddContact]) and our own primary phone ([Server.Phone]).
//
// A test starts it in one line:
//
//	srv := wamock.NewServer(t)
//	cli := srv.QuickClient(t)
//
// # What the server plays
//
//   - Login: <success>, prekey count and upload, passive IQ, pings. Devices
//     come from NewDevice already paired, with a Signal session with the
//     phone and (by default) 50 prekeys registered up front.
//   - Pairing: an unpaired store (container.NewDevice(), or
//     QuickUnpairedClient) gets <pair-device> with six refs, so whatsmeow
//     emits QR codes, and PairPhone gets a pairing ref. Our phone completes
//     the link from a QR code (Phone.ScanQR) or a pairing code
//     (Phone.EnterCode) with a properly signed <pair-success>; whatsmeow
//     emits events.PairSuccess, saves the device, and after stream error 515
//     logs in again as the new device. ConnectAndPair does it all in one
//     call.
//   - Contacts (AddContact): usync device lists and LIDs, prekey bundles,
//     decryption of what our client sends them (Contact.Decrypt,
//     Contact.Messages), and messages from them (Contact.SendText), plus
//     reinstalls and identity-change notifications.
//   - Message acks decided by a MessageRule (RequireToken, RequireCSToken).
//   - IQ handlers: privacy (SetPrivacyHandler), AB props (SetABProps), any
//     namespace (SetIQHandler); unknown IQs get an empty result.
//   - Our phone (Server.Phone): app state keys and patches (NCT salt),
//     history syncs served from a fake media host, answers to app state key
//     requests, and a copy of every message our client sends.
//   - Groups (CreateGroup, GetGroupInfo, UpdateGroupParticipants, sends with
//     sender keys, Contact.SendGroupMessage) and contacts that send
//     receipts, presence and chat state: see README.md.
//   - Observation: every stanza the clients send is recorded (Received,
//     WaitFor, Mark/Since, AckFor, MessageByID) and logged at debug level
//     (WAMOCK_LOG_LEVEL=debug); protocol errors are in Errors. WaitHandled
//     waits until the client has handled what the server pushed.
//
// Stanzas for a device that is offline wait in a queue and are delivered
// after it logs in again. Copies of a message our client sends reach our
// other companion devices.
//
// # Certificate root
//
// whatsmeow verifies the server's Noise certificate against the package
// variable whatsmeow.WACertPubKey. NewServer replaces that variable, once
// per process, with the public key of a test root that all wamock servers
// share. A process that uses wamock can therefore not also talk to the real
// WhatsApp servers, and tests that use wamock must not run in parallel with
// tests that connect real-network clients.
//
// # Routing
//
// whatsmeow always dials wss://web.whatsapp.com/ws/chat and downloads media
// from https://<media host>/... . The clients that [Server.NewClient] wires
// up use an *http.Client ([Server.HTTPClient]) whose dialer connects to the
// test server whatever address it is asked for, and which trusts the test
// server's TLS certificate.
package wamock
