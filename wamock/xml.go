package wamock

import (
	"fmt"

	waBinary "go.mau.fi/whatsmeow/binary"
)

// XML renders a node for logs and test failures. whatsmeow 2025-12 names
// the method (*Node).XMLString, later versions (Node).String; asking at run
// time works on both without build tags.
func XML(node *waBinary.Node) string {
	if node == nil {
		return "<nil>"
	}
	if x, ok := any(node).(interface{ XMLString() string }); ok {
		return x.XMLString()
	}
	if s, ok := any(*node).(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("<%s %v>", node.Tag, node.Attrs)
}
