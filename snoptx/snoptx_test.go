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
	// B is 3×3 and A 5×5: a 2×2 factor's eigenvector matrix can come out
	// symmetric and hide a missing transpose of U_B.
	const in, out, loc = 4, 3, 4
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

// TestEKFACRunningAverageMatchesHostReference: three updates with α = 0.6,
// batch 8, momentum and weight decay, against a host computation of
// m2 ← α·m2 + (1−α)·batch·(U_Aᵀ G̃ U_B)², update = U_A (G' / (m2 + ε + γ)) U_Bᵀ,
// with m2 the freshly averaged one (not the stale m2 of the previous step).
func TestEKFACRunningAverageMatchesHostReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const in, out, loc, batch = 4, 3, 2, 8
	const lr, eps, gamma, alpha, mu = 0.3, 0.05, 0.02, 0.6, 0.5
	ctx, w, b := layerCtx(rng, in, out)
	a, bb := spd(rng, in+1), spd(rng, out)
	opt, err := SNOpt().LearningRate(lr).Momentum(mu).Damping(eps).WeightDecay(gamma).Alpha(alpha).Done()
	require.NoError(t, err)
	st, err := NewStepper(testutil.Backend(), ctx, opt, []*context.Variable{w, b})
	require.NoError(t, err)
	stats := []adjointx.LayerFactors{{Layer: "/lay", Weights: w.ScopeAndName(), Bias: b.ScopeAndName(),
		A: symTensor(a), B: symTensor(bb), Locations: loc}}

	var ea, eb mat.EigenSym
	require.True(t, ea.Factorize(a, true))
	require.True(t, eb.Factorize(bb, true))
	var ua, ub mat.Dense
	ea.VectorsTo(&ua)
	eb.VectorsTo(&ub)
	la, lb := ea.Values(nil), eb.Values(nil)
	m2 := mat.NewDense(in+1, out, nil)
	for i := range in + 1 {
		for j := range out {
			m2.Set(i, j, loc*la[i]*lb[j])
		}
	}
	theta := mat.NewDense(in+1, out, append(values(t, w), values(t, b)...))
	buf := mat.NewDense(in+1, out, nil)
	for k := range 3 {
		gw, gb := randVals(rng, in*out), randVals(rng, out)
		var refresh []adjointx.LayerFactors
		if k == 0 {
			refresh = stats
		}
		require.NoError(t, st.Step(map[string]*tensors.Tensor{
			w.ScopeAndName(): tensors.FromFlatDataAndDimensions(gw, in, out),
			b.ScopeAndName(): tensors.FromFlatDataAndDimensions(gb, out),
		}, refresh, batch))

		g := mat.NewDense(in+1, out, append(gw, gb...))
		g.Add(g, scaled(gamma, theta))
		var rot, tmp mat.Dense
		tmp.Mul(ua.T(), g)
		rot.Mul(&tmp, &ub)
		p := mat.NewDense(in+1, out, nil)
		for i := range in + 1 {
			for j := range out {
				r := rot.At(i, j)
				m2.Set(i, j, alpha*m2.At(i, j)+(1-alpha)*batch*r*r)
				p.Set(i, j, r/(m2.At(i, j)+eps+gamma))
			}
		}
		var dir mat.Dense
		tmp.Mul(&ua, p)
		dir.Mul(&tmp, ub.T())
		buf.Scale(mu, buf)
		buf.Add(buf, &dir)
		theta.Sub(theta, scaled(lr, buf))

		got := append(values(t, w), values(t, b)...)
		for i, v := range got {
			assert.InDeltaf(t, theta.RawMatrix().Data[i], v, 1e-10, "step %d entry %d", k, i)
		}
	}
}

func scaled(c float64, m *mat.Dense) *mat.Dense {
	var out mat.Dense
	out.Scale(c, m)
	return &out
}

// TestConfigsRejectNonFiniteAndOutOfRange: every hyperparameter outside its
// range, NaN or infinite is ErrInvalid.
func TestConfigsRejectNonFiniteAndOutOfRange(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for name, build := range map[string]func() (Optimizer, error){
		"snopt lr inf":       func() (Optimizer, error) { return SNOpt().LearningRate(inf).Done() },
		"snopt lr nan":       func() (Optimizer, error) { return SNOpt().LearningRate(nan).Done() },
		"snopt momentum nan": func() (Optimizer, error) { return SNOpt().Momentum(nan).Done() },
		"snopt momentum 1":   func() (Optimizer, error) { return SNOpt().Momentum(1).Done() },
		"snopt wd nan":       func() (Optimizer, error) { return SNOpt().WeightDecay(nan).Done() },
		"snopt wd inf":       func() (Optimizer, error) { return SNOpt().WeightDecay(inf).Done() },
		"snopt alpha nan":    func() (Optimizer, error) { return SNOpt().Alpha(nan).Done() },
		"snopt alpha 1.5":    func() (Optimizer, error) { return SNOpt().Alpha(1.5).Done() },
		"snopt damping inf":  func() (Optimizer, error) { return SNOpt().Damping(inf).Done() },
		"snopt damping nan":  func() (Optimizer, error) { return SNOpt().Damping(nan).Done() },
		"snopt refresh 0":    func() (Optimizer, error) { return SNOpt().RefreshEvery(0).Done() },
		"sgd lr inf":         func() (Optimizer, error) { return SGD().LearningRate(inf).Done() },
		"sgd momentum nan":   func() (Optimizer, error) { return SGD().Momentum(nan).Done() },
		"sgd wd nan":         func() (Optimizer, error) { return SGD().WeightDecay(nan).Done() },
		"adam lr inf":        func() (Optimizer, error) { return Adam(inf, 0) },
		"adam lr 0":          func() (Optimizer, error) { return Adam(0, 0) },
		"adam wd nan":        func() (Optimizer, error) { return Adam(1e-3, nan) },
	} {
		_, err := build()
		assert.ErrorIs(t, err, ErrInvalid, name)
	}
	_, err := SNOpt().Momentum(0).Alpha(0).Done()
	assert.NoError(t, err, "the range ends 0 are valid")
}

// TestNonFiniteGradientIsRejectedWithoutUpdate: a NaN or Inf gradient is
// ErrNonFinite naming the variable, and neither the parameters, the
// momentum nor the step counter move.
func TestNonFiniteGradientIsRejectedWithoutUpdate(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, bad := range []float64{math.NaN(), math.Inf(-1)} {
		ctx, w, b := layerCtx(rng, 3, 2)
		opt, err := SNOpt().Done()
		require.NoError(t, err)
		st, err := NewStepper(testutil.Backend(), ctx, opt, []*context.Variable{w, b})
		require.NoError(t, err)
		before := append(values(t, w), values(t, b)...)
		gb := []float64{0.5, bad}
		err = st.Step(map[string]*tensors.Tensor{
			w.ScopeAndName(): tensors.FromFlatDataAndDimensions(randVals(rng, 6), 3, 2),
			b.ScopeAndName(): tensors.FromFlatDataAndDimensions(gb, 2),
		}, nil, 4)
		require.ErrorIs(t, err, ErrNonFinite)
		assert.Contains(t, err.Error(), b.ScopeAndName())
		assert.Equal(t, before, append(values(t, w), values(t, b)...))
		assert.Equal(t, int64(0), st.Iteration())
	}
}

// TestRefreshRejectsBadFactorsAtomically: a nil or non-finite factor is an
// error, not a panic, and the layers before it keep their previous state.
func TestRefreshRejectsBadFactorsAtomically(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	ctx, w, b := layerCtx(rng, 3, 2)
	opt, err := SNOpt().Done()
	require.NoError(t, err)
	good := adjointx.LayerFactors{Layer: "/lay", Weights: w.ScopeAndName(), Bias: b.ScopeAndName(),
		A: symTensor(spd(rng, 4)), B: symTensor(spd(rng, 2)), Locations: 1}
	nilA := good
	nilA.A = nil
	assert.ErrorIs(t, opt.Refresh(ctx, []adjointx.LayerFactors{nilA}, 4), ErrInvalid)
	nanB := good
	nanB.B = tensors.FromFlatDataAndDimensions([]float64{1, math.NaN(), math.NaN(), 1}, 2, 2)
	assert.Error(t, opt.Refresh(ctx, []adjointx.LayerFactors{good, nanB}, 4))
	assert.Nil(t, ctx.InspectVariable("/snoptx/snopt/lay", "weights_ua"), "a failed refresh wrote state")
	require.NoError(t, opt.Refresh(ctx, []adjointx.LayerFactors{good}, 4))
	assert.NotNil(t, ctx.InspectVariable("/snoptx/snopt/lay", "weights_ua"))
}
