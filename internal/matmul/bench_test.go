package matmul

import (
	"fmt"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/snopt-go/snopt/internal/testutil"
)

// filled returns a float32 [r, c] tensor with small varied entries.
func filled(r, c int) *tensors.Tensor {
	v := make([]float32, r*c)
	for i := range v {
		v[i] = float32(i%7)*0.1 - 0.3
	}
	return tensors.FromFlatDataAndDimensions(v, r, c)
}

// benchGraph times one compiled graph of two float32 inputs and reports
// GFLOP/s for flops floating-point operations per call.
func benchGraph(b *testing.B, fn func(x, y *Node) *Node, x, y *tensors.Tensor, flops float64) {
	exec := MustNewExec(testutil.Backend(), fn)
	exec.MustExec(x, y)[0].FinalizeAll()
	for b.Loop() {
		exec.MustExec(x, y)[0].FinalizeAll()
	}
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkProducts compares each product whole (one batch element, as
// GoMLX's Dot builds it) with the same product cut into row blocks, on the
// shapes of the time-series field ([512, 33]·[33, 32]) and of the image
// field's convolution and its transpose at width 16.
func BenchmarkProducts(b *testing.B) {
	plainAB := func(x, y *Node) *Node { return Dot(x, y) }
	plainATB := func(x, y *Node) *Node { return DotGeneral(x, []int{0}, nil, y, []int{0}, nil) }
	for _, sz := range [][3]int{{512, 33, 32}, {6272, 153, 16}, {6272, 16, 153}, {128, 64, 64}, {6272, 586, 64}, {6272, 576, 64}} {
		m, k, n := sz[0], sz[1], sz[2]
		flops := 2 * float64(m*k*n)
		name := fmt.Sprintf("%dx%dx%d", m, k, n)
		b.Run("AB/whole/"+name, func(b *testing.B) { benchGraph(b, plainAB, filled(m, k), filled(k, n), flops) })
		b.Run("AB/blocks/"+name, func(b *testing.B) { benchGraph(b, AB, filled(m, k), filled(k, n), flops) })
		b.Run("ATB/whole/"+name, func(b *testing.B) { benchGraph(b, plainATB, filled(m, k), filled(m, n), flops) })
		b.Run("ATB/blocks/"+name, func(b *testing.B) { benchGraph(b, ATB, filled(m, k), filled(m, n), flops) })
	}
}

// BenchmarkBias compares the two ways of adding a bias to a product on the
// time-series field's shape: a broadcast add after it, and one more weight
// row against a column of ones (what field.Linear does).
func BenchmarkBias(b *testing.B) {
	const m, k, n = 512, 33, 32
	flops := 2 * float64(m*k*n)
	b.Run("broadcast-add", func(b *testing.B) {
		benchGraph(b, func(x, w *Node) *Node {
			bias := Slice(w, AxisRange(0, 1))
			return Add(AB(x, w), bias)
		}, filled(m, k), filled(k, n), flops)
	})
	b.Run("ones-column", func(b *testing.B) {
		benchGraph(b, func(x, w *Node) *Node {
			bias := Slice(w, AxisRange(0, 1))
			xt := Concatenate([]*Node{x, Ones(x.Graph(), shapes.Make(x.DType(), m, 1))}, 1)
			return AB(xt, Concatenate([]*Node{w, bias}, 0))
		}, filled(m, k), filled(k, n), flops)
	})
}

// BenchmarkSeriesFieldFloor times the least work one evaluation of the
// time-series ODE field can do on this backend: its four matrix products,
// three tanh and the concatenation of each layer's [z, t, 1] rows (the two
// extra columns are taken from z here), nothing else (no Runge–Kutta
// combination, no tanh derivative). "fwd" is one forward evaluation: four
// [B, H+2]·[H+2, H] products and three tanh over [B, H]. "bwd" is one evaluation of the
// adjoint's augmented dynamics: the same forward recomputation, then per
// layer the input cotangent g·Wᵀ and the weight cotangent [z, t, 1]ᵀ·g.
// Multiplied by an iteration's evaluation counts, ms/eval gives a floor under
// the time of one training iteration (docs/benchmarks.md, issue 12).
func BenchmarkSeriesFieldFloor(b *testing.B) {
	for _, p := range []struct {
		name  string
		batch int
		h     int
	}{{"CharT", 512, 32}, {"ArtWR", 256, 64}} {
		in := p.h + 2
		forward := func(z, w *Node) (acts []*Node, out *Node) {
			x := z
			for l := range 4 {
				if l > 0 {
					x = Tanh(x)
				}
				xt := Concatenate([]*Node{x, Slice(z, AxisRange(), AxisRange(0, 2))}, 1)
				acts = append(acts, xt)
				x = AB(xt, Slice(w, AxisRange(l*in, (l+1)*in)))
			}
			return acts, x
		}
		fwd := func(z, w *Node) *Node {
			_, out := forward(z, w)
			return out
		}
		bwd := func(z, w *Node) *Node {
			acts, g := forward(z, w)
			var grads []*Node
			for l := 3; l >= 0; l-- {
				wl := Slice(w, AxisRange(l*in, (l+1)*in))
				grads = append(grads, ATB(acts[l], g))
				g = Slice(ABT(g, wl), AxisRange(), AxisRange(0, p.h))
			}
			return Add(ReduceAllSum(g), ReduceAllSum(Concatenate(grads, 0)))
		}
		z, w := filled(p.batch, p.h), filled(4*in, p.h)
		mac := float64(p.batch * in * p.h)
		b.Run(p.name+"/fwd", func(b *testing.B) { benchEval(b, fwd, z, w, 4*2*mac) })
		b.Run(p.name+"/bwd", func(b *testing.B) { benchEval(b, bwd, z, w, 12*2*mac) })
	}
}

// benchEval is benchGraph reporting milliseconds per call as well.
func benchEval(b *testing.B, fn func(x, y *Node) *Node, x, y *tensors.Tensor, flops float64) {
	benchGraph(b, fn, x, y, flops)
	b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/eval")
}
