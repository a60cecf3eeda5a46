package state

import (
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"strings"
	"testing"
)

// accountMaps are the fields own guards: the maps a clone shares with the account it
// was cloned from until it writes them.
var accountMaps = map[string]bool{
	"Transfers": true, "Cycles": true, "Bills": true, "CreditNotes": true, "Invoices": true,
	"Resources": true, "Cases": true, "Packages": true, "Orders": true, "closed": true, "PaidOut": true,
}

// A decision works on a clone that shares the account's maps, and the account it was
// given is cached and decided on again: a write that skipped own would change it. So
// no code of the package writes one of those maps but through own (or, in clone and
// WithClosedCases, a copy of its own): not by index, not by delete, not by handing
// the map or its address to something that may write it.
func TestEveryWriteToAnAccountsMapsGoesThroughOwn(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var parsed []*ast.File
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, f)
	}
	// Typed, so that a field of another type with the same name (a Ledger's
	// CreditNotes, the decider's closed) is not taken for the account's.
	info := &types.Info{Selections: map[*ast.SelectorExpr]*types.Selection{}}
	conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil)}
	if _, err := conf.Check("github.com/payinfra/refunds/state", fset, parsed, info); err != nil {
		t.Fatal(err)
	}
	isAccountMap := func(e ast.Expr) bool {
		sel, ok := e.(*ast.SelectorExpr)
		if !ok || !accountMaps[sel.Sel.Name] {
			return false
		}
		s, ok := info.Selections[sel]
		if !ok {
			return false
		}
		recv := s.Recv()
		if p, ok := recv.(*types.Pointer); ok {
			recv = p.Elem()
		}
		named, ok := recv.(*types.Named)
		return ok && named.Obj().Name() == "Account"
	}
	checked := 0
	for _, f := range parsed {
		checked++
		report := func(n ast.Node, how string) {
			t.Errorf("%s: %s an account's map without own", fset.Position(n.Pos()), how)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.AssignStmt:
				for _, lhs := range n.Lhs {
					if ix, ok := lhs.(*ast.IndexExpr); ok && isAccountMap(ix.X) {
						report(n, "writes")
					}
				}
			case *ast.CallExpr:
				fn, _ := n.Fun.(*ast.Ident)
				if fn != nil && (fn.Name == "own" || fn.Name == "cloneMap" || fn.Name == "len") {
					return true
				}
				for _, arg := range n.Args {
					if u, ok := arg.(*ast.UnaryExpr); ok && u.Op == token.AND && isAccountMap(u.X) {
						report(n, "hands out the address of")
					}
					if isAccountMap(arg) {
						report(n, "hands out")
					}
				}
			}
			return true
		})
	}
	if checked < 5 {
		t.Fatalf("checked %d files: the test is not looking at the package", checked)
	}
}
