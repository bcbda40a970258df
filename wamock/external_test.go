package wamock_test

import "testing"

// TestExample runs the example's test body, so the example stays correct.
func TestExample(t *testing.T) { sayHello(t) }
