package adjointx

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// quadratic is Φ(x) = ½ xᵀMx + cᵀx on the flattened state, M SPD.
type quadratic struct {
	m *mat.SymDense
	c []float64
}

func newQuadratic(rng *rand.Rand, n int) quadratic {
	a := mat.NewDense(n, n, nil)
	for i := range n {
		for j := range n {
			a.Set(i, j, rng.NormFloat64())
		}
	}
	m := mat.NewSymDense(n, nil)
	m.SymOuterK(1, a) // A·Aᵀ
	for i := range n {
		m.SetSym(i, i, m.At(i, i)+0.5)
	}
	c := make([]float64, n)
	for i := range c {
		c[i] = rng.NormFloat64()
	}
	return quadratic{m: m, c: c}
}

func (q quadratic) grad(x []float64) []float64 {
	g := mat.NewVecDense(len(x), nil)
	g.MulVec(q.m, mat.NewVecDense(len(x), x))
	out := g.RawVector().Data
	for i := range out {
		out[i] += q.c[i]
	}
	return out
}

// factors returns y_i = √λ_i v_i with Σ y_i y_iᵀ = M.
func (q quadratic) factors(t *testing.T) [][]float64 {
	var eig mat.EigenSym
	require.True(t, eig.Factorize(q.m, true))
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	n, _ := vecs.Dims()
	var out [][]float64
	for i, l := range eig.Values(nil) {
		y := make([]float64, n)
		for r := range n {
			y[r] = math.Sqrt(l) * vecs.At(r, i)
		}
		out = append(out, y)
	}
	return out
}

// outerSum returns Σ_i a_i b_iᵀ.
func outerSum(a, b [][]float64) *mat.Dense {
	out := mat.NewDense(len(a[0]), len(b[0]), nil)
	for i := range a {
		var o mat.Dense
		o.Outer(1, mat.NewVecDense(len(a[i]), a[i]), mat.NewVecDense(len(b[i]), b[i]))
		out.Add(out, &o)
	}
	return out
}

func matRelErr(got, want mat.Matrix) float64 {
	var d mat.Dense
	d.Sub(got, want)
	return mat.Norm(&d, 2) / mat.Norm(want, 2)
}

func flatParams(t *testing.T, m map[string]*tensors.Tensor, order []string) []float64 {
	var out []float64
	for _, name := range order {
		out = append(out, vals(t, m[name])...)
	}
	return out
}

// secondOrderSetup solves a tiny time-dependent MLP (batch 2, dim 2) and runs
// the low-rank backward pass with y_i from the eigen-factors of M.
func secondOrderSetup(t *testing.T) (b *Block, tr *Trajectory, q quadratic, g *Gradients, order []string) {
	rng := rand.New(rand.NewPCG(31, 32))
	ctx := newCtx(12, 0.7)
	b = newBlock(t, ctx, mlpField(2, 3, true), &Options{Forward: tolOpts(1e-11)})
	x0 := randn(rng, 2, 2)
	ts := []float64{0, 0.9}
	var err error
	tr, err = b.Forward([]*tensors.Tensor{x0}, ts)
	require.NoError(t, err)
	q = newQuadratic(rng, 4)
	x1 := vals(t, tr.Final()[0])
	cot := [][]*tensors.Tensor{nil, {fromVals(q.grad(x1), x0)}}
	var ys [][]*tensors.Tensor
	for _, y := range q.factors(t) {
		ys = append(ys, []*tensors.Tensor{fromVals(y, x0)})
	}
	g, err = b.Backward(tr, cot, &BackwardOptions{Curvature: Vectors, Vectors: [][][]*tensors.Tensor{nil, ys}, IntegrateP: true})
	require.NoError(t, err)
	params, err := b.Params(tr.Xs[0])
	require.NoError(t, err)
	for _, v := range params {
		order = append(order, v.ScopeAndName())
	}
	return
}

// TestProp2LowRankMatchesFullMatrixODE: Σ p_i p_iᵀ, Σ q_i p_iᵀ and Σ q_i q_iᵀ
// from the vector ODEs (11) equal Q_uu, Q_xu, Q_xx of the matrix ODEs (9).
func TestProp2LowRankMatchesFullMatrixODE(t *testing.T) {
	b, tr, q, g, order := secondOrderSetup(t)
	x1 := vals(t, tr.Final()[0])
	ref, err := b.Reference(tr, []*tensors.Tensor{fromVals(q.grad(x1), tr.Xs[0][0])}, mat.DenseCopyOf(q.m), nil)
	require.NoError(t, err)
	var qs, ps [][]float64
	for i := range g.Q {
		qs = append(qs, vals(t, g.Q[i][0]))
		ps = append(ps, flatParams(t, g.P[i], order))
	}
	eXX := matRelErr(outerSum(qs, qs), ref.Qxx)
	eXU := matRelErr(outerSum(qs, ps), ref.Qxu)
	eUU := matRelErr(outerSum(ps, ps), ref.Quu)
	t.Logf("relative errors: Q_xx %.2e, Q_xu %.2e, Q_uu %.2e (m = %d)", eXX, eXU, eUU, len(ps[0]))
	assert.LessOrEqual(t, eXX, 1e-6)
	assert.LessOrEqual(t, eXU, 1e-6)
	assert.LessOrEqual(t, eUU, 1e-6)
	assert.LessOrEqual(t, relErr(vals(t, g.X0[0]), ref.Qx), 1e-8, "Q_x = a(t0)")
	assert.LessOrEqual(t, relErr(flatParams(t, g.Params, order), ref.Qu), 1e-8, "Q_u = dL/dθ")
}

// TestGaussNewtonIdentity: with exact Φ_xx, Q_uu(t0) = J_θᵀ Φ_xx J_θ, where
// J_θ = ∂x(t1)/∂θ comes from finite differences of forward solves.
func TestGaussNewtonIdentity(t *testing.T) {
	b, tr, q, g, order := secondOrderSetup(t)
	var ps [][]float64
	for i := range g.P {
		ps = append(ps, flatParams(t, g.P[i], order))
	}
	quu := outerSum(ps, ps)
	params, err := b.Params(tr.Xs[0])
	require.NoError(t, err)
	m := len(ps[0])
	jac := mat.NewDense(4, m, nil)
	col := 0
	const eps = 1e-6
	for _, v := range params {
		orig := vals(t, v.MustValue())
		for i := range orig {
			pert := append([]float64{}, orig...)
			solveAt := func(d float64) []float64 {
				pert[i] = orig[i] + d
				require.NoError(t, v.SetValue(fromVals(pert, v.MustValue())))
				tr2, err := b.Forward(tr.Xs[0], tr.Ts)
				require.NoError(t, err)
				return vals(t, tr2.Final()[0])
			}
			plus, minus := solveAt(eps), solveAt(-eps)
			for r := range 4 {
				jac.Set(r, col, (plus[r]-minus[r])/(2*eps))
			}
			col++
		}
		require.NoError(t, v.SetValue(fromVals(orig, v.MustValue())))
	}
	var mj, want mat.Dense
	mj.Mul(q.m, jac)
	want.Mul(jac.T(), &mj)
	e := matRelErr(quu, &want)
	t.Logf("Q_uu vs J_θᵀ Φ_xx J_θ: relative error %.2e", e)
	assert.LessOrEqual(t, e, 1e-4)
}
