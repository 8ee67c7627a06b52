package zoo

import (
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/internal/testutil"
)

// TestGRUVJPMatchesFiniteDifferences: for L = ⟨c, GRU(x, h)⟩ (B 3, D 4,
// H 5, float64) the hand-written VJP with gh' = c equals central
// differences in h and in entries of every variable.
func TestGRUVJPMatchesFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(81, 82))
	const b, d, hd = 3, 4, 5
	cell := gruCell{in: d, hidden: hd}
	ctx := context.New()
	require.NoError(t, ctx.SetRNGStateFromSeed(8))
	x, h, c := testutil.RandN(rng, b, d), testutil.RandN(rng, b, hd), testutil.RandN(rng, b, hd)
	loss := context.MustNewExec(testutil.Backend(), ctx.In("gru"), func(ctx *context.Context, x, h, c *Node) *Node {
		v := cell.vars(ctx, x.Graph(), x.DType())
		return ReduceAllSum(Mul(cell.forward(v, x, h), c))
	})
	vjp := context.MustNewExec(testutil.Backend(), ctx.In("gru"), func(ctx *context.Context, x, h, c *Node) []*Node {
		v := cell.vars(ctx, x.Graph(), x.DType())
		g := cell.vjp(v, x, h, c)
		return []*Node{g.h, g.wi, g.wh, g.bi, g.bh}
	})
	eval := func(h *tensors.Tensor) float64 { return tensors.ToScalar[float64](loss.MustExec1(x, h, c)) }
	eval(h) // creates the variables
	out := vjp.MustExec(x, h, c)
	const eps = 1e-6
	fd := func(get func() []float64, set func([]float64), i int) float64 {
		orig := get()
		at := func(delta float64) float64 {
			vals := append([]float64{}, orig...)
			vals[i] += delta
			set(vals)
			return eval(h)
		}
		v := (at(eps) - at(-eps)) / (2 * eps)
		set(orig)
		return v
	}
	// ∂L/∂h.
	gh := tensors.MustCopyFlatData[float64](out[0])
	hv := tensors.MustCopyFlatData[float64](h)
	for i := range hv {
		vals := append([]float64{}, hv...)
		vals[i] += eps
		lp := eval(tensors.FromFlatDataAndDimensions(vals, b, hd))
		vals[i] -= 2 * eps
		lm := eval(tensors.FromFlatDataAndDimensions(vals, b, hd))
		assert.InDelta(t, (lp-lm)/(2*eps), gh[i], 1e-7, "∂L/∂h[%d]", i)
	}
	for k, name := range []string{"wi", "wh", "bi", "bh"} {
		v := ctx.InspectVariable("/gru", name)
		require.NotNil(t, v, name)
		got := tensors.MustCopyFlatData[float64](out[k+1])
		get := func() []float64 { return tensors.MustCopyFlatData[float64](v.MustValue()) }
		set := func(vals []float64) {
			require.NoError(t, v.SetValue(tensors.FromFlatDataAndDimensions(vals, v.Shape().Dimensions...)))
		}
		n := len(get())
		for _, i := range []int{0, n / 3, n/3 + 1, 2 * n / 3, n - 1} {
			want := fd(get, set, i)
			assert.InDelta(t, want, got[i], 1e-7*math.Max(1, math.Abs(want)), "%s[%d]", name, i)
		}
	}
}
