package hooks

import (
	"fmt"

	waBinary "go.mau.fi/whatsmeow/binary"
)

// nodeXML renders a node in a test failure on either whatsmeow: 2025-12
// has (*Node).XMLString, later versions (Node).String.
func nodeXML(node *waBinary.Node) string {
	if x, ok := any(node).(interface{ XMLString() string }); ok {
		return x.XMLString()
	}
	if s, ok := any(*node).(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprint(node.Tag, node.Attrs)
}
