package snoptx

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/snopt-go/snopt/adjointx"
	"github.com/snopt-go/snopt/internal/testutil"
)

// TestGroupKeepsLearningRatesApart: Adam (lr 0.01) on one layer and SNOpt
// (lr 0.5, α = 1, no momentum) on another, grouped in one context: each
// layer moves by its own optimizer's step — Adam's first step ≈ lr·sign(g),
// SNOpt's the dense preconditioned one — and SNOpt sees only its layer's
// factors.
func TestGroupKeepsLearningRatesApart(t *testing.T) {
	rng := rand.New(rand.NewPCG(91, 92))
	ctx := context.New()
	wa := ctx.In("a").VariableWithValue("weights", tensors.FromFlatDataAndDimensions(randVals(rng, 6), 3, 2))
	wb := ctx.In("b").VariableWithValue("weights", tensors.FromFlatDataAndDimensions(randVals(rng, 6), 3, 2))
	adam, err := Adam(0.01, 0)
	require.NoError(t, err)
	snopt, err := SNOpt().LearningRate(0.5).Momentum(0).Alpha(1).Done()
	require.NoError(t, err)
	sa, err := NewStepper(testutil.Backend(), ctx, adam, []*context.Variable{wa})
	require.NoError(t, err)
	sb, err := NewStepper(testutil.Backend(), ctx, snopt, []*context.Variable{wb})
	require.NoError(t, err)
	_, err = NewGroup(sa, sb)
	assert.ErrorIs(t, err, ErrInvalid, "two steppers in the root scope would share a learning rate")
	g, err := NewGroup(sa.Scope("gru"), sb.Scope("ode"))
	require.NoError(t, err)
	assert.Len(t, g.Params(), 2)

	a0, b0 := values(t, wa), values(t, wb)
	ga, gb := randVals(rng, 6), randVals(rng, 6)
	aFactor, bFactor := spd(rng, 3), spd(rng, 2)
	stats := []adjointx.LayerFactors{
		{Layer: "/b", Weights: wb.ScopeAndName(), A: symTensor(aFactor), B: symTensor(bFactor), Locations: 1},
		{Layer: "/a", Weights: wa.ScopeAndName(), A: symTensor(spd(rng, 3)), B: symTensor(spd(rng, 2)), Locations: 1},
	}
	require.True(t, g.NeedsStats())
	grads := map[string]*tensors.Tensor{
		wa.ScopeAndName(): tensors.FromFlatDataAndDimensions(ga, 3, 2),
		wb.ScopeAndName(): tensors.FromFlatDataAndDimensions(gb, 3, 2),
	}
	require.NoError(t, g.Step(grads, stats, 1))
	for i, v := range values(t, wa) {
		assert.InDelta(t, a0[i]-0.01*math.Copysign(1, ga[i]), v, 1e-6, "Adam's layer [%d]", i)
	}
	// SNOpt's layer (no bias): Δ = −0.5·(A ⊗ B + εI)⁻¹ vec(G).
	want := denseStep(t, aFactor, bFactor, gb, DefaultDamping)
	for i, v := range values(t, wb) {
		assert.InDelta(t, b0[i]-0.5*want[i], v, 1e-10, "SNOpt's layer [%d]", i)
	}
	assert.Equal(t, int64(1), g.Iteration())

	// A NaN in one part leaves both untouched.
	a1, b1 := values(t, wa), values(t, wb)
	grads[wb.ScopeAndName()] = tensors.FromFlatDataAndDimensions([]float64{0, 0, math.NaN(), 0, 0, 0}, 3, 2)
	assert.ErrorIs(t, g.Step(grads, nil, 1), ErrNonFinite)
	assert.Equal(t, a1, values(t, wa))
	assert.Equal(t, b1, values(t, wb))
}

// denseStep solves (A ⊗ B + εI) x = vec(G) for a layer without bias.
func denseStep(t *testing.T, a, b *mat.SymDense, g []float64, eps float64) []float64 {
	var kron mat.Dense
	kron.Kronecker(a, b)
	n, _ := kron.Dims()
	for i := range n {
		kron.Set(i, i, kron.At(i, i)+eps)
	}
	var x mat.VecDense
	require.NoError(t, x.SolveVec(&kron, mat.NewVecDense(n, append([]float64{}, g...))))
	return x.RawVector().Data
}

// TestScaleLearningRates: halving every learning-rate variable halves the
// next SGD step exactly and Adam's (≈ lr·sign(g) with a constant
// gradient) to within Adam's ε; a bad factor is ErrInvalid.
func TestScaleLearningRates(t *testing.T) {
	ctx := context.New()
	wa := ctx.In("a").VariableWithValue("w", []float64{1, 2})
	wb := ctx.In("b").VariableWithValue("w", []float64{3, 4})
	adam, err := Adam(0.01, 0)
	require.NoError(t, err)
	sgd, err := SGD().LearningRate(0.1).Momentum(0).Done()
	require.NoError(t, err)
	sa, err := NewStepper(testutil.Backend(), ctx, adam, []*context.Variable{wa})
	require.NoError(t, err)
	sb, err := NewStepper(testutil.Backend(), ctx, sgd, []*context.Variable{wb})
	require.NoError(t, err)
	g, err := NewGroup(sa.Scope("gru"), sb.Scope("ode"))
	require.NoError(t, err)
	grads := map[string]*tensors.Tensor{wa.ScopeAndName(): tensors.FromValue([]float64{1, -1}),
		wb.ScopeAndName(): tensors.FromValue([]float64{1, -1})}
	require.NoError(t, g.Step(grads, nil, 1))
	a1, b1 := values(t, wa), values(t, wb)
	n, err := ScaleLearningRates(ctx, 0.5)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "one learning rate per stepper scope")
	require.NoError(t, g.Step(grads, nil, 1))
	a2, b2 := values(t, wa), values(t, wb)
	assert.InDeltaSlice(t, []float64{b1[0] - 0.05, b1[1] + 0.05}, b2, 1e-12)
	assert.InDeltaSlice(t, []float64{a1[0] - 0.005, a1[1] + 0.005}, a2, 1e-6)
	_, err = ScaleLearningRates(ctx, math.NaN())
	assert.ErrorIs(t, err, ErrInvalid)
}
