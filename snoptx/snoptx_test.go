package snoptx

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/checkpoints"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/snopt-go/snopt/adjointx"
	"github.com/snopt-go/snopt/internal/testutil"
)

func randVals(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

// spd returns a random symmetric positive-definite n×n matrix.
func spd(rng *rand.Rand, n int) *mat.SymDense {
	a := mat.NewDense(n, n, randVals(rng, n*n))
	s := mat.NewSymDense(n, nil)
	s.SymOuterK(1, a)
	for i := range n {
		s.SetSym(i, i, s.At(i, i)+0.1)
	}
	return s
}

func symTensor(s *mat.SymDense) *tensors.Tensor {
	n := s.SymmetricDim()
	return tensors.FromFlatDataAndDimensions(mat.DenseCopyOf(s).RawMatrix().Data, n, n)
}

// layerCtx holds one layer "/lay/weights" [in, out] and "/lay/biases" [out].
func layerCtx(rng *rand.Rand, in, out int) (*context.Context, *context.Variable, *context.Variable) {
	ctx := context.New()
	w := ctx.In("lay").VariableWithValue("weights", tensors.FromFlatDataAndDimensions(randVals(rng, in*out), in, out))
	b := ctx.In("lay").VariableWithValue("biases", tensors.FromFlatDataAndDimensions(randVals(rng, out), out))
	return ctx, w, b
}

func values(t *testing.T, v *context.Variable) []float64 {
	return tensors.MustCopyFlatData[float64](v.MustValue())
}

// TestEKFACMatchesDensePreconditioner: right after a refresh (α = 1, no
// momentum) the update equals (Locations·Ā ⊗ B̄ + (ε+γ)I)⁻¹ vec(G + γθ)
// computed densely.
func TestEKFACMatchesDensePreconditioner(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const in, out, loc = 3, 2, 4
	const lr, eps, gamma = 0.5, 0.05, 0.01
	ctx, w, b := layerCtx(rng, in, out)
	a, bb := spd(rng, in+1), spd(rng, out)
	opt, err := SNOpt().LearningRate(lr).Momentum(0).Damping(eps).WeightDecay(gamma).Alpha(1).Done()
	require.NoError(t, err)
	st, err := NewStepper(testutil.Backend(), ctx, opt, []*context.Variable{w, b})
	require.NoError(t, err)
	gw, gb := randVals(rng, in*out), randVals(rng, out)
	theta := append(values(t, w), values(t, b)...)
	stats := []adjointx.LayerFactors{{Layer: "/lay", Weights: w.ScopeAndName(), Bias: b.ScopeAndName(),
		A: symTensor(a), B: symTensor(bb), Locations: loc}}
	grads := map[string]*tensors.Tensor{
		w.ScopeAndName(): tensors.FromFlatDataAndDimensions(gw, in, out),
		b.ScopeAndName(): tensors.FromFlatDataAndDimensions(gb, out),
	}
	require.NoError(t, st.Step(grads, stats, 8))

	// Dense: G̃ = [gW; gb] (+γθ̃) row-major, M = loc·(A ⊗ B) + (ε+γ)I.
	g := append(append([]float64{}, gw...), gb...)
	for i := range g {
		g[i] += gamma * theta[i]
	}
	var kron mat.Dense
	kron.Kronecker(a, bb)
	n := (in + 1) * out
	m := mat.NewDense(n, n, nil)
	m.Scale(loc, &kron)
	for i := range n {
		m.Set(i, i, m.At(i, i)+eps+gamma)
	}
	var x mat.VecDense
	require.NoError(t, x.SolveVec(m, mat.NewVecDense(n, g)))
	got := append(values(t, w), values(t, b)...)
	for i := range got {
		assert.InDeltaf(t, theta[i]-lr*x.AtVec(i), got[i], 1e-10, "entry %d", i)
	}
	assert.Equal(t, int64(1), st.Iteration())
}

// TestSGDMomentumAndWeightDecay: two steps of buf ← μ·buf + g + γθ, θ ← θ − lr·buf.
func TestSGDMomentumAndWeightDecay(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ctx, w, b := layerCtx(rng, 2, 2)
	const lr, mu, gamma = 0.1, 0.9, 0.01
	opt, err := SGD().LearningRate(lr).Momentum(mu).WeightDecay(gamma).Done()
	require.NoError(t, err)
	st, err := NewStepper(testutil.Backend(), ctx, opt, []*context.Variable{w, b})
	require.NoError(t, err)
	theta := values(t, w)
	buf := make([]float64, len(theta))
	for range 2 {
		g := randVals(rng, 4)
		require.NoError(t, st.Step(map[string]*tensors.Tensor{
			w.ScopeAndName(): tensors.FromFlatDataAndDimensions(g, 2, 2),
			b.ScopeAndName(): tensors.FromFlatDataAndDimensions([]float64{0, 0}, 2),
		}, nil, 1))
		for i := range theta {
			buf[i] = mu*buf[i] + g[i] + gamma*theta[i]
			theta[i] -= lr * buf[i]
		}
		got := values(t, w)
		for i := range theta {
			assert.InDelta(t, theta[i], got[i], 1e-12)
		}
	}
	assert.False(t, opt.NeedsStats(0))
}

func TestAdamStep(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	ctx, w, b := layerCtx(rng, 2, 2)
	opt, err := Adam(0.01, 0)
	require.NoError(t, err)
	st, err := NewStepper(testutil.Backend(), ctx, opt, []*context.Variable{w, b})
	require.NoError(t, err)
	theta := values(t, w)
	g := randVals(rng, 4)
	require.NoError(t, st.Step(map[string]*tensors.Tensor{
		w.ScopeAndName(): tensors.FromFlatDataAndDimensions(g, 2, 2),
		b.ScopeAndName(): tensors.FromFlatDataAndDimensions([]float64{1, -1}, 2),
	}, nil, 1))
	got := values(t, w)
	// First Adam step moves each coordinate by ≈ lr·sign(g).
	for i := range theta {
		assert.InDelta(t, theta[i]-0.01*math.Copysign(1, g[i]), got[i], 1e-6)
	}
}

func TestRefreshCadence(t *testing.T) {
	opt, err := SNOpt().RefreshEvery(3).Done()
	require.NoError(t, err)
	var got []bool
	for s := range int64(7) {
		got = append(got, opt.NeedsStats(s))
	}
	assert.Equal(t, []bool{true, false, false, true, false, false, true}, got)
	_, err = SNOpt().Damping(0).Done()
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = SGD().LearningRate(-1).Done()
	assert.ErrorIs(t, err, ErrInvalid)
}

// TestOptimizerStateSurvivesCheckpoint: after saving and reloading into a
// fresh context and optimizer, the next update is identical.
func TestOptimizerStateSurvivesCheckpoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const in, out = 3, 2
	newRun := func() (*context.Context, *Stepper, *context.Variable, *context.Variable) {
		ctx, w, b := layerCtx(rand.New(rand.NewPCG(9, 9)), in, out)
		opt, err := SNOpt().LearningRate(0.1).RefreshEvery(10).Done()
		require.NoError(t, err)
		st, err := NewStepper(testutil.Backend(), ctx, opt, []*context.Variable{w, b})
		require.NoError(t, err)
		return ctx, st, w, b
	}
	grads := func(w, b *context.Variable) map[string]*tensors.Tensor {
		return map[string]*tensors.Tensor{
			w.ScopeAndName(): tensors.FromFlatDataAndDimensions(randVals(rng, in*out), in, out),
			b.ScopeAndName(): tensors.FromFlatDataAndDimensions(randVals(rng, out), out),
		}
	}
	ctx, st, w, b := newRun()
	stats := []adjointx.LayerFactors{{Layer: "/lay", Weights: w.ScopeAndName(), Bias: b.ScopeAndName(),
		A: symTensor(spd(rng, in+1)), B: symTensor(spd(rng, out)), Locations: 1}}
	require.NoError(t, st.Step(grads(w, b), stats, 4))
	require.NoError(t, st.Step(grads(w, b), nil, 4))
	dir := filepath.Join(t.TempDir(), "ckpt")
	h, err := checkpoints.Build(ctx).Dir(dir).Keep(2).Done()
	require.NoError(t, err)
	require.NoError(t, h.Save())
	next := grads(w, b)
	require.NoError(t, st.Step(next, nil, 4))
	want := append(values(t, w), values(t, b)...)

	ctx2, st2, w2, b2 := newRun()
	_, err = checkpoints.Build(ctx2).Dir(dir).Done()
	require.NoError(t, err)
	assert.Equal(t, int64(2), st2.Iteration())
	require.NoError(t, st2.Step(next, nil, 4))
	got := append(values(t, w2), values(t, b2)...)
	for i := range want {
		assert.InDelta(t, want[i], got[i], 1e-12)
	}
	_, err = os.Stat(dir)
	require.NoError(t, err)
}
