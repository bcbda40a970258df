package hooks

import "testing"

func TestShortHash(t *testing.T) {
	if ShortHash(nil) != "none" {
		t.Error("empty secrets say none")
	}
	// sha256("abc") starts with ba7816bf.
	if got := ShortHash([]byte("abc")); got != "ba7816bf" {
		t.Errorf("ShortHash(abc) = %s", got)
	}
}
