package adjointx

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/field"
)

// quadLoss is L = Σ_k ⟨c_k, x(t_k)⟩ + ½‖x(t_K)‖² for weights c_k (nil: none).
type quadLoss struct{ c [][]float64 }

func (l quadLoss) value(t *testing.T, tr *Trajectory) float64 {
	total := 0.0
	for k, ck := range l.c {
		xk := vals(t, tr.Xs[k][0])
		for i := range ck {
			total += ck[i] * xk[i]
		}
	}
	for _, v := range vals(t, tr.Final()[0]) {
		total += v * v / 2
	}
	return total
}

func (l quadLoss) cotangents(t *testing.T, tr *Trajectory) [][]*tensors.Tensor {
	cot := make([][]*tensors.Tensor, len(tr.Ts))
	last := len(tr.Ts) - 1
	for k := range tr.Ts {
		var g []float64
		if l.c[k] != nil {
			g = append([]float64{}, l.c[k]...)
		}
		if k == last {
			xk := vals(t, tr.Final()[0])
			if g == nil {
				g = make([]float64, len(xk))
			}
			for i := range xk {
				g[i] += xk[i]
			}
		}
		if g != nil {
			cot[k] = []*tensors.Tensor{fromVals(g, tr.Xs[0][0])}
		}
	}
	return cot
}

// fdCheck compares adjoint gradients with central finite differences of the
// loss through forward solves at a tight tolerance.
func fdCheck(t *testing.T, f field.Field, ts []float64, obsWeights bool) {
	const batch, dim = 3, 2
	rng := rand.New(rand.NewPCG(21, 22))
	ctx := newCtx(4, 0.6)
	x0 := randn(rng, batch, dim)
	loss := quadLoss{c: make([][]float64, len(ts))}
	if obsWeights {
		for k := 1; k < len(ts)-1; k++ {
			loss.c[k] = vals(t, randn(rng, batch, dim))
		}
	}
	adj := newBlock(t, ctx, f, &Options{Forward: tolOpts(1e-8)})
	tr, err := adj.Forward([]*tensors.Tensor{x0}, ts)
	require.NoError(t, err)
	grads, err := adj.Backward(tr, loss.cotangents(t, tr), nil)
	require.NoError(t, err)

	ref := newBlock(t, ctx, f, &Options{Forward: tolOpts(1e-12)})
	lossAt := func(x0 *tensors.Tensor, ts []float64) float64 {
		tr, err := ref.Forward([]*tensors.Tensor{x0}, ts)
		require.NoError(t, err)
		return loss.value(t, tr)
	}
	const eps = 1e-5
	// θ
	params, err := adj.Params([]*tensors.Tensor{x0})
	require.NoError(t, err)
	require.NotEmpty(t, params)
	var got, want []float64
	for _, v := range params {
		orig := vals(t, v.MustValue())
		for i := range orig {
			pert := append([]float64{}, orig...)
			pert[i] = orig[i] + eps
			require.NoError(t, v.SetValue(fromVals(pert, v.MustValue())))
			lp := lossAt(x0, ts)
			pert[i] = orig[i] - eps
			require.NoError(t, v.SetValue(fromVals(pert, v.MustValue())))
			lm := lossAt(x0, ts)
			want = append(want, (lp-lm)/(2*eps))
		}
		require.NoError(t, v.SetValue(fromVals(orig, v.MustValue())))
		got = append(got, vals(t, grads.Params[v.ScopeAndName()])...)
	}
	e := relErr(got, want)
	t.Logf("θ: relative error %.2e over %d parameters (backward NFE %d)", e, len(want), grads.Solve.NFE)
	assert.LessOrEqual(t, e, 1e-5, "dL/dθ")
	// x(t0)
	x0v := vals(t, x0)
	want = want[:0]
	for i := range x0v {
		p := append([]float64{}, x0v...)
		p[i] += eps
		lp := lossAt(fromVals(p, x0), ts)
		p[i] -= 2 * eps
		lm := lossAt(fromVals(p, x0), ts)
		want = append(want, (lp-lm)/(2*eps))
	}
	e = relErr(vals(t, grads.X0[0]), want)
	t.Logf("x0: relative error %.2e", e)
	assert.LessOrEqual(t, e, 1e-5, "dL/dx0")
	// t1 (the last time) and t0.
	last := len(ts) - 1
	shifted := func(idx int, d float64) []float64 {
		s := append([]float64{}, ts...)
		s[idx] += d
		return s
	}
	wantT1 := (lossAt(x0, shifted(last, eps)) - lossAt(x0, shifted(last, -eps))) / (2 * eps)
	e = relErr([]float64{grads.T1}, []float64{wantT1})
	t.Logf("t1: %g vs FD %g, relative error %.2e", grads.T1, wantT1, e)
	assert.LessOrEqual(t, e, 1e-5, "dL/dt1")
	if !obsWeights {
		wantT0 := (lossAt(x0, shifted(0, eps)) - lossAt(x0, shifted(0, -eps))) / (2 * eps)
		e = relErr([]float64{grads.T0}, []float64{wantT0})
		t.Logf("t0: %g vs FD %g, relative error %.2e", grads.T0, wantT0, e)
		assert.LessOrEqual(t, e, 1e-5, "dL/dt0")
	}
}

func TestAdjointMatchesFiniteDifferences(t *testing.T) {
	for _, c := range []struct {
		name    string
		timeDep bool
		ts      []float64
		obs     bool
	}{
		{"mlp one time", false, []float64{0, 1}, false},
		{"time-dependent one time", true, []float64{0, 1.2}, false},
		{"time-dependent several times", true, []float64{0, 0.3, 0.7, 1.1}, true},
		{"mlp several times backwards in t", false, []float64{1, 0.6, 0.1}, true},
	} {
		t.Run(c.name, func(t *testing.T) { fdCheck(t, mlpField(2, 6, c.timeDep), c.ts, c.obs) })
	}
}

// TestAutodiffFieldMatchesLayered: the autodiff fallback gives the same
// gradients as the hand-written VJPs.
func TestAutodiffFieldMatchesLayered(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	ctx := newCtx(9, 0.5)
	f := mlpField(2, 5, true)
	x0 := []*tensors.Tensor{randn(rng, 4, 2)}
	ts := []float64{0, 0.5, 1}
	run := func(fl field.Field) *Gradients {
		b := newBlock(t, ctx, fl, &Options{Forward: tolOpts(1e-9)})
		tr, err := b.Forward(x0, ts)
		require.NoError(t, err)
		loss := quadLoss{c: [][]float64{nil, vals(t, randn(rand.New(rand.NewPCG(1, 1)), 4, 2)), nil}}
		g, err := b.Backward(tr, loss.cotangents(t, tr), nil)
		require.NoError(t, err)
		return g
	}
	hand, auto := run(f), run(field.Autodiff(f.Eval))
	assert.InDelta(t, 0, relErr(vals(t, hand.X0[0]), vals(t, auto.X0[0])), 1e-9)
	require.Equal(t, len(auto.Params), len(hand.Params))
	for name, g := range auto.Params {
		assert.InDeltaf(t, 0, relErr(vals(t, hand.Params[name]), vals(t, g)), 1e-9, name)
	}
	_ = fmt.Sprint
	_ = context.New
}
