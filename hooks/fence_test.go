package hooks

import (
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"testing"
)

// TestFenceWrapsEveryWrite holds fencedStore to AccountStore: every method
// of AccountStore that is not a read below must have its own override in
// fence.go. A write added to a storage interface and left to the embedded
// store would pass the fence, and could bring rows back after a logout
// deleted them.
func TestFenceWrapsEveryWrite(t *testing.T) {
	unfenced := map[string]string{
		"GetMany":            "read",
		"Contacts":           "read",
		"GetByLID":           "read",
		"LIDsForPNs":         "read",
		"GetSalt":            "read",
		"GetProps":           "read",
		"GetTimelock":        "read",
		"GetSaltBackfill":    "read",
		"GetNewChatCap":      "read",
		"InTransaction":      "read",
		"SharesTransactions": "a probe whose transaction rolls back",
		"Prune":              "a deletion, which brings no row back",
	}
	files, err := parser.ParseFile(token.NewFileSet(), "fence.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	fenced := map[string]bool{}
	for _, decl := range files.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Recv == nil || len(fn.Recv.List) != 1 {
			continue
		}
		if recv, ok := fn.Recv.List[0].Type.(*ast.Ident); ok && recv.Name == "fencedStore" {
			fenced[fn.Name.Name] = true
		}
	}
	methods := reflect.TypeFor[AccountStore]()
	for i := range methods.NumMethod() {
		name := methods.Method(i).Name
		_, exempt := unfenced[name]
		switch {
		case exempt && fenced[name]:
			t.Errorf("%s is listed here as unfenced (%s) but fence.go wraps it: drop it from the list", name, unfenced[name])
		case !exempt && !fenced[name]:
			t.Errorf("AccountStore.%s has no override on fencedStore in fence.go: a write must enter the account's fence", name)
		}
	}
	for name := range unfenced {
		if _, ok := methods.MethodByName(name); !ok {
			t.Errorf("%s is listed as unfenced but AccountStore has no such method", name)
		}
	}
}
