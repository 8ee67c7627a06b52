package adjointx

import (
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/internal/testutil"
)

// TestAdjointMatchesBackpropThroughRK4: the adjoint gradient agrees with GoMLX
// autodiff through an unrolled fine-grid rk4 solve of the same field.
func TestAdjointMatchesBackpropThroughRK4(t *testing.T) {
	rng := rand.New(rand.NewPCG(81, 82))
	ctx := newCtx(23, 0.6)
	f := mlpField(2, 4, true)
	x0 := randn(rng, 3, 2)
	c := randn(rng, 3, 2)
	const t0, t1, steps = 0.0, 1.0, 64

	b := newBlock(t, ctx, f, &Options{Forward: tolOpts(1e-11)})
	tr, err := b.Forward([]*tensors.Tensor{x0}, []float64{t0, t1})
	require.NoError(t, err)
	// L = ⟨c, x(t1)⟩ + ½‖x(t1)‖².
	x1 := vals(t, tr.Final()[0])
	cv := vals(t, c)
	cot := make([]float64, len(x1))
	for i := range cot {
		cot[i] = cv[i] + x1[i]
	}
	g, err := b.Backward(tr, [][]*tensors.Tensor{nil, {fromVals(cot, x0)}}, nil)
	require.NoError(t, err)
	params, err := b.Params(tr.Xs[0])
	require.NoError(t, err)

	exec := context.MustNewExec(testutil.Backend(), b.ctx.Reuse(), func(ctx *context.Context, in []*Node) []*Node {
		x, cn := in[0], in[1]
		gr := x.Graph()
		h := (t1 - t0) / steps
		eval := func(tt float64, y *Node) *Node { return f.Eval(ctx, Scalar(gr, y.DType(), tt), []*Node{y})[0] }
		y := x
		for s := range steps {
			tt := t0 + float64(s)*h
			k1 := eval(tt, y)
			k2 := eval(tt+h/2, Add(y, MulScalar(k1, h/2)))
			k3 := eval(tt+h/2, Add(y, MulScalar(k2, h/2)))
			k4 := eval(tt+h, Add(y, MulScalar(k3, h)))
			y = Add(y, MulScalar(Add(Add(k1, MulScalar(k2, 2)), Add(MulScalar(k3, 2), k4)), h/6))
		}
		loss := Add(ReduceAllSum(Mul(cn, y)), MulScalar(ReduceAllSum(Square(y)), 0.5))
		wrt := []*Node{x}
		for _, v := range params {
			wrt = append(wrt, v.ValueGraph(gr))
		}
		return Gradient(loss, wrt...)
	})
	res := exec.MustExec(x0, c)
	e := relErr(vals(t, g.X0[0]), vals(t, res[0]))
	t.Logf("x0: relative difference %.2e", e)
	assert.LessOrEqual(t, e, 1e-6)
	var got, want []float64
	for i, v := range params {
		got = append(got, vals(t, g.Params[v.ScopeAndName()])...)
		want = append(want, vals(t, res[1+i])...)
	}
	e = relErr(got, want)
	t.Logf("θ: relative difference %.2e", e)
	assert.LessOrEqual(t, e, 1e-6)
}
