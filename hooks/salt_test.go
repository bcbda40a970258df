package hooks

import (
	"testing"
	"time"
)

func TestShortHash(t *testing.T) {
	if ShortHash(nil) != "none" {
		t.Error("empty secrets say none")
	}
	// sha256("abc") starts with ba7816bf.
	if got := ShortHash([]byte("abc")); got != "ba7816bf" {
		t.Errorf("ShortHash(abc) = %s", got)
	}
}

// TestSaltPuts: the seqs PutNCTSalt takes are handed to the events of the
// same salt once each, newest first, and are bounded and expire.
func TestSaltPuts(t *testing.T) {
	now := time.Now()
	a, b := []byte("salt-a"), []byte("salt-b")
	var p saltPuts
	if _, ok := p.take(a, now); ok {
		t.Fatal("a seq for a salt never put")
	}
	// A leftover with no event to come (history sync's salt), then a
	// sync that sets a, then b, then a again.
	p.remember(a, 1, now)
	p.remember(a, 3, now)
	p.remember(b, 4, now)
	p.remember(a, 5, now)
	for _, want := range []struct {
		salt []byte
		seq  uint64
	}{{a, 5}, {b, 4}, {a, 3}, {a, 1}} {
		if got, ok := p.take(want.salt, now); !ok || got != want.seq {
			t.Fatalf("take %s = %d, %v; want %d", want.salt, got, ok, want.seq)
		}
	}
	if _, ok := p.take(a, now); ok {
		t.Fatal("a seq was handed out twice")
	}
	if _, ok := p.take(nil, now); ok {
		t.Fatal("an empty salt took a seq")
	}

	// Expired entries are forgotten.
	p.remember(a, 6, now)
	p.remember(b, 7, now.Add(saltPutTTL/2))
	if _, ok := p.take(a, now.Add(saltPutTTL)); ok {
		t.Fatal("an expired seq was handed out")
	}
	if got, ok := p.take(b, now.Add(saltPutTTL)); !ok || got != 7 {
		t.Fatalf("take b = %d, %v; want 7", got, ok)
	}

	// Full: the oldest entry goes.
	for i := range uint64(saltPutsMax + 1) {
		p.remember(a, 100+i, now)
	}
	if len(p.entries) != saltPutsMax {
		t.Fatalf("%d entries kept, want at most %d", len(p.entries), saltPutsMax)
	}
	for range saltPutsMax {
		if got, _ := p.take(a, now); got == 100 {
			t.Fatal("the oldest entry survived a full table")
		}
	}
}
