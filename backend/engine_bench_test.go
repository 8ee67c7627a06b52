package backend

import (
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// BenchmarkHookOverhead times a graph of 64 tiny element-wise ops on
// [4]-element tensors, where the work is nothing and the per-op cost is
// everything: "plain" is simplego, "engine" the same with the engine's
// executors (a map lookup per op, then a kernel call), "engine-other" a
// graph of ops the engine does not swap (Max), which only pays the lookup
// of an unswapped table entry: none.
//
//	go test ./backend -run '^$' -bench HookOverhead
func BenchmarkHookOverhead(b *testing.B) {
	chain := func(op func(x, y *Node) *Node) func(x, y *Node) *Node {
		return func(x, y *Node) *Node {
			for range 64 {
				x = op(x, y)
			}
			return x
		}
	}
	x := tensors.FromValue([]float32{1, 2, 3, 4})
	y := tensors.FromValue([]float32{0.5, 0.25, 0.125, 1})
	for _, c := range []struct {
		name   string
		engine bool
		op     func(x, y *Node) *Node
	}{{"plain", false, Mul}, {"engine", true, Mul}, {"engine-other", true, Max}, {"plain-other", false, Max}} {
		b.Run(c.name, func(b *testing.B) {
			bk := plainBackend(b)
			if c.engine {
				bk = engineBackend(b)
			}
			e := MustNewExec(bk, chain(c.op))
			xl, err := x.LocalClone()
			if err != nil {
				b.Fatal(err)
			}
			yl, err := y.LocalClone()
			if err != nil {
				b.Fatal(err)
			}
			e.MustExec(xl, yl)[0].FinalizeAll()
			for b.Loop() {
				e.MustExec(xl, yl)[0].FinalizeAll()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64, "ns/op-node")
		})
	}
}
