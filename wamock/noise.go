package wamock

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waCert"
	"go.mau.fi/whatsmeow/util/keys"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/hkdf"
	"google.golang.org/protobuf/proto"
)

// noisePattern is the protocol name. It is exactly 32 bytes, so Noise uses it
// as the initial hash as is instead of hashing it.
const noisePattern = "Noise_XX_25519_AESGCM_SHA256\x00\x00\x00\x00"

// waPrologue is what the client sends before its first frame, and what both
// sides mix into the handshake hash: "WA", magic 6, dictionary version 3.
var waPrologue = []byte{'W', 'A', 6, 3}

var (
	testRootOnce sync.Once
	testRoot     *keys.KeyPair
)

// installTestRoot creates the process-wide certificate root and points
// whatsmeow.WACertPubKey at it. It happens once so that every server in the
// process shares the root and the variable is written only before the first
// client can read it (which keeps the race detector quiet).
func installTestRoot() *keys.KeyPair {
	testRootOnce.Do(func() {
		testRoot = keys.NewKeyPair()
		whatsmeow.WACertPubKey = *testRoot.Pub
	})
	return testRoot
}

// CertRoot returns the public key of the Noise certificate root that every
// server in this process signs its certificate chain with. whatsmeow in this
// process already trusts it (NewServer and Start install it); a client in
// another process must set whatsmeow.WACertPubKey to it before connecting.
func CertRoot() [32]byte {
	return *installTestRoot().Pub
}

// makeCertChain builds the two-level chain whatsmeow checks in
// verifyServerCert: root signs the intermediate, the intermediate signs the
// leaf, and the leaf carries the server's static Noise key.
func makeCertChain(root *keys.KeyPair, static *keys.KeyPair) ([]byte, error) {
	intermediate := keys.NewKeyPair()
	const intermediateSerial = 7
	interDetails, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(intermediateSerial),
		IssuerSerial: proto.Uint32(whatsmeow.WACertIssuerSerial),
		Key:          intermediate.Pub[:],
		NotBefore:    proto.Uint64(0),
		NotAfter:     proto.Uint64(1 << 40),
	})
	if err != nil {
		return nil, fmt.Errorf("marshal intermediate details: %w", err)
	}
	leafDetails, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(intermediateSerial + 1),
		IssuerSerial: proto.Uint32(intermediateSerial),
		Key:          static.Pub[:],
		NotBefore:    proto.Uint64(0),
		NotAfter:     proto.Uint64(1 << 40),
	})
	if err != nil {
		return nil, fmt.Errorf("marshal leaf details: %w", err)
	}
	interSig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*root.Priv), interDetails)
	leafSig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*intermediate.Priv), leafDetails)
	chain, err := proto.Marshal(&waCert.CertChain{
		Intermediate: &waCert.CertChain_NoiseCertificate{Details: interDetails, Signature: interSig[:]},
		Leaf:         &waCert.CertChain_NoiseCertificate{Details: leafDetails, Signature: leafSig[:]},
	})
	if err != nil {
		return nil, fmt.Errorf("marshal cert chain: %w", err)
	}
	return chain, nil
}

// noiseState is the responder's symmetric state during the XX handshake.
//
// WhatsApp's variant differs from standard Noise in one place: the (empty)
// payload of the first message is not mixed into the hash, so a stock Noise
// library cannot be used.
type noiseState struct {
	hash    []byte
	ck      []byte
	key     cipher.AEAD
	counter uint32
}

func newNoiseState() *noiseState {
	ns := &noiseState{hash: []byte(noisePattern), ck: []byte(noisePattern)}
	ns.mixHash(waPrologue)
	return ns
}

func (ns *noiseState) mixHash(data []byte) {
	h := sha256.New()
	h.Write(ns.hash)
	h.Write(data)
	ns.hash = h.Sum(nil)
}

// mixKey runs HKDF with the chaining key as salt; the first half of the output
// is the new chaining key and the second half the new cipher key.
func (ns *noiseState) mixKey(secret []byte) error {
	ck, k, err := hkdfPair(ns.ck, secret)
	if err != nil {
		return err
	}
	ns.ck = ck
	ns.key, err = newGCM(k)
	ns.counter = 0
	return err
}

func (ns *noiseState) mixDH(priv *[32]byte, pub []byte) error {
	secret, err := curve25519.X25519(priv[:], pub)
	if err != nil {
		return fmt.Errorf("x25519: %w", err)
	}
	return ns.mixKey(secret)
}

func (ns *noiseState) encrypt(plaintext []byte) []byte {
	ciphertext := ns.key.Seal(nil, nonce(ns.counter), plaintext, ns.hash)
	ns.counter++
	ns.mixHash(ciphertext)
	return ciphertext
}

func (ns *noiseState) decrypt(ciphertext []byte) ([]byte, error) {
	plaintext, err := ns.key.Open(nil, nonce(ns.counter), ciphertext, ns.hash)
	ns.counter++
	if err != nil {
		return nil, err
	}
	ns.mixHash(ciphertext)
	return plaintext, nil
}

// split derives the transport keys. The client writes with the first and
// reads with the second, so the server does the opposite.
func (ns *noiseState) split() (read, write cipher.AEAD, err error) {
	clientWrite, clientRead, err := hkdfPair(ns.ck, nil)
	if err != nil {
		return nil, nil, err
	}
	if read, err = newGCM(clientWrite); err != nil {
		return nil, nil, err
	}
	if write, err = newGCM(clientRead); err != nil {
		return nil, nil, err
	}
	return read, write, nil
}

func hkdfPair(salt, secret []byte) (a, b []byte, err error) {
	out := make([]byte, 64)
	if _, err = io.ReadFull(hkdf.New(sha256.New, secret, salt, nil), out); err != nil {
		return nil, nil, fmt.Errorf("hkdf: %w", err)
	}
	return out[:32], out[32:], nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return gcm, nil
}

// nonce is 12 bytes with a 32-bit big-endian counter at the end.
func nonce(counter uint32) []byte {
	iv := make([]byte, 12)
	binary.BigEndian.PutUint32(iv[8:], counter)
	return iv
}
