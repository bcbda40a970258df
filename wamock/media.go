package wamock

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"sync"

	"golang.org/x/crypto/hkdf"
)

// Media types: the HKDF info strings whatsmeow derives media keys with.
const (
	mediaTypeHistory  = "WhatsApp History Keys"
	mediaTypeAppState = "WhatsApp App State Keys"
)

// mediaHost stores encrypted blobs and serves them to the clients' media
// HTTP client.
type mediaHost struct {
	mu       sync.Mutex
	blobs    map[string][]byte // by URL path
	requests []string
}

func newMediaHost() *mediaHost {
	return &mediaHost{blobs: make(map[string][]byte)}
}

// uploadedMedia is what a message or notification needs to point at a blob.
type uploadedMedia struct {
	DirectPath    string
	MediaKey      []byte
	FileSHA256    []byte
	FileEncSHA256 []byte
	FileLength    uint64
}

// upload encrypts plaintext the way WhatsApp media is encrypted and stores
// it: AES-256-CBC with keys from HKDF(mediaKey, info=mediaType), followed by
// the first 10 bytes of HMAC-SHA256(iv || ciphertext).
func (m *mediaHost) upload(plaintext []byte, mediaType string) (*uploadedMedia, error) {
	mediaKey := make([]byte, 32)
	if _, err := rand.Read(mediaKey); err != nil {
		return nil, fmt.Errorf("generate media key: %w", err)
	}
	expanded := make([]byte, 112)
	if _, err := io.ReadFull(hkdf.New(sha256.New, mediaKey, nil, []byte(mediaType)), expanded); err != nil {
		return nil, fmt.Errorf("expand media key: %w", err)
	}
	iv, cipherKey, macKey := expanded[:16], expanded[16:48], expanded[48:80]
	ciphertext, err := cbcEncrypt(cipherKey, iv, plaintext)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, macKey)
	mac.Write(iv)
	mac.Write(ciphertext)
	file := append(ciphertext, mac.Sum(nil)[:10]...)
	fileSHA := sha256.Sum256(plaintext)
	encSHA := sha256.Sum256(file)

	name := make([]byte, 16)
	_, _ = rand.Read(name)
	path := "/v/t62.wamock-24/" + hex.EncodeToString(name) + ".enc"
	m.mu.Lock()
	m.blobs[path] = file
	m.mu.Unlock()
	return &uploadedMedia{
		// whatsmeow appends "&hash=…" to the direct path, so real direct
		// paths always carry a query string.
		DirectPath:    path + "?ccb=11-4&oh=wamock",
		MediaKey:      mediaKey,
		FileSHA256:    fileSHA[:],
		FileEncSHA256: encSHA[:],
		FileLength:    uint64(len(plaintext)),
	}, nil
}

func (m *mediaHost) serveHTTP(s *Server, w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.requests = append(m.requests, r.URL.Path)
	blob, ok := m.blobs[r.URL.Path]
	m.mu.Unlock()
	if !ok || r.Method != http.MethodGet {
		s.log.Debug().Str("path", r.URL.Path).Str("method", r.Method).Msg("Media request for unknown blob")
		http.NotFound(w, r)
		return
	}
	s.log.Debug().Str("path", r.URL.Path).Int("bytes", len(blob)).Msg("Serving media")
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(blob)
}

// MediaRequests returns the paths of the media downloads the clients made.
func (s *Server) MediaRequests() []string {
	s.media.mu.Lock()
	defer s.media.mu.Unlock()
	return append([]string(nil), s.media.requests...)
}

// cbcEncrypt is AES-CBC with PKCS#7 padding.
func cbcEncrypt(key, iv, plaintext []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	padded := append(append([]byte(nil), plaintext...), bytes.Repeat([]byte{byte(pad)}, pad)...)
	out := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, padded)
	return out, nil
}
