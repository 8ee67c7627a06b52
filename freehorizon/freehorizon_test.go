package freehorizon

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/adjointx"
	"github.com/snopt-go/snopt/field"
	"github.com/snopt-go/snopt/internal/testutil"
	"github.com/snopt-go/snopt/odeint"
)

// TestQTMatchesFiniteDifferences: Q_T = c·T + dL/dT from the adjoint equals
// the derivative in T of the regularised loss Φ(x(T)) + (c/2)T².
func TestQTMatchesFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.New()
	f := field.NewSequential(&field.Linear{Name: "l0", Out: 5, ConcatTime: true}, field.NewTanh(),
		&field.Linear{Name: "l1", Out: 2, ConcatTime: true})
	b, err := adjointx.NewBlock(testutil.Backend(), ctx, f, &adjointx.Options{Forward: &odeint.Options{RTol: 1e-11, ATol: 1e-11}})
	require.NoError(t, err)
	defer b.Finalize()
	x0 := []*tensors.Tensor{testutil.RandN(rng, 3, 2)}
	const c, T = 0.3, 0.8
	loss := func(T float64) (float64, []float64) {
		tr, err := b.Forward(x0, []float64{0, T})
		require.NoError(t, err)
		x := testutil.Float64s(t, tr.Final()[0])
		l := 0.0
		for _, v := range x {
			l += v * v / 2
		}
		return l + c*T*T/2, x
	}
	_, x1 := loss(T)
	tr, err := b.Forward(x0, []float64{0, T})
	require.NoError(t, err)
	g, err := b.Backward(tr, [][]*tensors.Tensor{nil, {tensors.FromFlatDataAndDimensions(x1, 3, 2)}}, nil)
	require.NoError(t, err)
	qT := c*T + g.T1
	const h = 1e-5
	lp, _ := loss(T + h)
	lm, _ := loss(T - h)
	fd := (lp - lm) / (2 * h)
	assert.InDelta(t, 0, (qT-fd)/fd, 1e-4, "Q_T %g vs FD %g", qT, fd)
}

// scalarProblem is dx/dt = λx, x(0) = x0, Φ = ½(x(T) − y)², cost Φ + (c/2)T².
type scalarProblem struct{ lambda, x0, y, c float64 }

func (p scalarProblem) dLdT(T float64) float64 {
	x := p.x0 * math.Exp(p.lambda*T)
	return (x - p.y) * p.lambda * x // Φ_x·F̄
}

// optimum solves c·T + dL/dT = 0 by bisection on [lo, hi].
func (p scalarProblem) optimum(lo, hi float64) float64 {
	g := func(T float64) float64 { return p.c*T + p.dLdT(T) }
	for range 200 {
		mid := (lo + hi) / 2
		if g(lo)*g(mid) <= 0 {
			hi = mid
		} else {
			lo = mid
		}
	}
	return (lo + hi) / 2
}

// updatesToConverge runs a policy on exact statistics until T is within 1%
// of T*, returning the number of updates (or −1).
func updatesToConverge(t *testing.T, pol Policy, p scalarProblem, tStar float64) int {
	for n := 1; n <= 2000; n++ {
		require.True(t, pol.Observe(Observation{DLdT: p.dLdT(pol.T())}))
		if math.Abs(pol.T()-tStar) <= 0.01*tStar {
			return n
		}
	}
	return -1
}

// TestFeedbackConvergesFasterThanBaseline: on the scalar linear ODE with a
// closed-form optimum, the feedback policy reaches T* within 1% in fewer
// updates than the first-order baseline with the same η.
func TestFeedbackConvergesFasterThanBaseline(t *testing.T) {
	p := scalarProblem{lambda: -0.5, x0: 1, y: 0, c: 0.2}
	tStar := p.optimum(0.1, 10)
	require.InDelta(t, 0, p.c*tStar+p.dLdT(tStar), 1e-9)
	cfg := Config{LR: 0.5, C: p.c, Every: 1, Decay: 1e-9}
	fb, err := NewFeedback(3, cfg)
	require.NoError(t, err)
	bl, err := NewBaseline(3, cfg)
	require.NoError(t, err)
	nF, nB := updatesToConverge(t, fb, p, tStar), updatesToConverge(t, bl, p, tStar)
	t.Logf("T* = %.4f: feedback %d updates, baseline %d", tStar, nF, nB)
	require.Positive(t, nF, "feedback converges")
	assert.True(t, nB < 0 || nF < nB, "feedback %d vs baseline %d", nF, nB)
}

// TestPoliciesStayAboveFloorAndFinite: huge, zero and NaN statistics never
// drive T below the floor or to NaN; NaN skips the update with a warning.
func TestPoliciesStayAboveFloorAndFinite(t *testing.T) {
	for _, mk := range []func(float64, Config) (Policy, error){NewFeedback, NewBaseline} {
		var warnings []string
		cfg := Config{LR: 1, C: 0, Every: 1, Floor: 0.1, Warn: func(m string) { warnings = append(warnings, m) }}
		pol, err := mk(1, cfg)
		require.NoError(t, err)
		for _, d := range []float64{1e300, -1e300, 0, math.NaN(), math.Inf(1), 1e-300, 5, -5} {
			pol.Observe(Observation{DLdT: d, Grad: []float64{1}, Theta: []float64{2}})
			assert.False(t, math.IsNaN(pol.T()), "%s: T NaN after %g", pol.Name(), d)
			assert.GreaterOrEqual(t, pol.T(), 0.1, "%s after %g", pol.Name(), d)
			assert.False(t, math.IsInf(pol.T(), 0))
		}
		assert.GreaterOrEqual(t, pol.Skipped(), 2, pol.Name()) // NaN and Inf at least
		assert.Len(t, warnings, pol.Skipped())
	}
	_, err := NewFeedback(1, Config{LR: 0})
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = NewBaseline(-1, Config{LR: 1})
	assert.ErrorIs(t, err, ErrInvalid)
}

// TestFeedbackTermUsesParameterChange: with δθ along Q_u the feedback term
// (Φ_xᵀF̄)·Q_uᵀδθ shifts the update by exactly η·that/Q_TT.
func TestFeedbackTermUsesParameterChange(t *testing.T) {
	cfg := Config{LR: 0.5, C: 1, Every: 2, Decay: 1e-12}
	pol, err := NewFeedback(2, cfg)
	require.NoError(t, err)
	pol.Observe(Observation{DLdT: 0.5, Grad: []float64{1, 2}, Theta: []float64{0, 0}})
	require.True(t, pol.Observe(Observation{DLdT: 0.5, Grad: []float64{1, 2}, Theta: []float64{0.1, -0.2}}))
	// Q_T = 1·2 + 0.5, Q_TT = 1 + 0.25, Q_Tu·δθ = 0.5·(1·0.1 + 2·(−0.2)) = −0.15.
	want := 2 - 0.5*(2.5-0.15)/1.25
	assert.InDelta(t, want, pol.T(), 1e-9)
	u := pol.Last()
	assert.Equal(t, 2.0, u.From)
	assert.InDelta(t, want, u.To, 1e-12)
	assert.InDelta(t, 2.5, u.QT, 1e-9)
	assert.InDelta(t, 1.25, u.QTT, 1e-9)
	assert.InDelta(t, -0.15, u.Feedback, 1e-9)
	assert.False(t, u.Limited)
}

// TestUpdateLimit: one update moves T by at most T/2 + Floor, and Last says so.
func TestUpdateLimit(t *testing.T) {
	for _, mk := range []func(float64, Config) (Policy, error){NewFeedback, NewBaseline} {
		pol, err := mk(1, Config{LR: 1, C: 0.01, Every: 1, Floor: 0.1, Decay: 1e-12})
		require.NoError(t, err)
		// Both propose ΔT ≈ −1 (Q_T ≈ Q_TT ≈ 1.01); the limit is 1/2 + 0.1.
		require.True(t, pol.Observe(Observation{DLdT: 1, Grad: []float64{0}, Theta: []float64{0}}))
		u := pol.Last()
		assert.InDelta(t, 0.4, pol.T(), 1e-12, pol.Name())
		assert.True(t, u.Limited, pol.Name())
		assert.Equal(t, 1.0, u.From)
		assert.Equal(t, pol.T(), u.To)
	}
}

// TestWarmup: with Warmup W and Every E the updates come at observations
// W+E, W+2E, ...; the statistics of the warm-up still enter the averages.
func TestWarmup(t *testing.T) {
	for _, mk := range []func(float64, Config) (Policy, error){NewFeedback, NewBaseline} {
		pol, err := mk(1, Config{LR: 0.1, C: 0.1, Every: 3, Warmup: 5})
		require.NoError(t, err)
		var at []int
		for i := 1; i <= 14; i++ {
			if pol.Observe(Observation{DLdT: -0.2, Grad: []float64{1}, Theta: []float64{0}}) {
				at = append(at, i)
			}
		}
		assert.Equal(t, []int{8, 11, 14}, at, pol.Name())
	}
	_, err := NewFeedback(1, Config{LR: 1, Warmup: -1})
	assert.ErrorIs(t, err, ErrInvalid)
}

// TestCurvatureEstimates: Q_TT is c + (bias-corrected EMA of dL/dT)² with
// SquaredMean and c + EMA of (dL/dT)² with MeanSquare, against averages
// computed here by brute force.
func TestCurvatureEstimates(t *testing.T) {
	ds := []float64{0.3, -1.2, 0.8, 2.0, -0.4}
	const c, decay = 0.25, 0.7
	var wSum, m1, m2 float64
	for i, d := range ds {
		w := (1 - decay) * math.Pow(decay, float64(len(ds)-1-i))
		wSum += w
		m1 += w * d
		m2 += w * d * d
	}
	m1, m2 = m1/wSum, m2/wSum
	for curv, gn := range map[Curvature]float64{SquaredMean: m1 * m1, MeanSquare: m2} {
		pol, err := NewFeedback(1, Config{LR: 0.1, C: c, Every: len(ds), Decay: decay, Curvature: curv})
		require.NoError(t, err)
		for i, d := range ds {
			updated := pol.Observe(Observation{DLdT: d, Grad: []float64{0}, Theta: []float64{0}})
			require.Equal(t, i == len(ds)-1, updated)
		}
		u := pol.Last()
		assert.InDelta(t, c+gn, u.QTT, 1e-12, curv.String())
		assert.InDelta(t, c*1+m1, u.QT, 1e-12, curv.String())
		assert.InDelta(t, 1-0.1*u.QT/u.QTT, u.To, 1e-12, curv.String())
	}
	_, err := NewFeedback(1, Config{LR: 1, Curvature: Curvature(7)})
	assert.ErrorIs(t, err, ErrInvalid)
	for _, c := range []Curvature{SquaredMean, MeanSquare} {
		got, err := ParseCurvature(c.String())
		require.NoError(t, err)
		assert.Equal(t, c, got)
	}
	_, err = ParseCurvature("mean")
	assert.ErrorIs(t, err, ErrInvalid)
}

// TestSquaredMeanFasterUnderNoise: on the scalar problem with mini-batch
// noise in dL/dT several times its mean, the squared-mean curvature (which
// leaves the noise variance out of Q_TT) reaches T* within 10% in fewer
// updates, on average over seeds, than the mean of squares.
func TestSquaredMeanFasterUnderNoise(t *testing.T) {
	p := scalarProblem{lambda: -0.5, x0: 1, y: 0, c: 0.2}
	tStar := p.optimum(0.01, 10)
	const seeds, sigma, maxUpdates = 30, 1.0, 400
	mean := map[Curvature]float64{}
	for _, curv := range []Curvature{SquaredMean, MeanSquare} {
		for seed := range uint64(seeds) {
			rng := rand.New(rand.NewPCG(seed, 7))
			pol, err := NewFeedback(3, Config{LR: 0.5, C: p.c, Every: 10, Decay: 0.95, Curvature: curv})
			require.NoError(t, err)
			n := maxUpdates
			for u := 1; u <= maxUpdates; {
				if pol.Observe(Observation{DLdT: p.dLdT(pol.T()) + sigma*rng.NormFloat64(), Grad: []float64{0}, Theta: []float64{0}}) {
					if math.Abs(pol.T()-tStar) <= 0.1*tStar {
						n = u
						break
					}
					u++
				}
			}
			mean[curv] += float64(n) / seeds
		}
	}
	t.Logf("T* = %.3f: updates to within 10%%: squared-mean %.1f, mean-square %.1f", tStar, mean[SquaredMean], mean[MeanSquare])
	assert.Less(t, mean[SquaredMean], mean[MeanSquare])
}

// observations returns a reproducible sequence with θ moving every
// iteration, so the last iteration's δθ differs from the period's.
func observations(n, dim int) []Observation {
	rng := rand.New(rand.NewPCG(21, 22))
	theta := make([]float64, dim)
	var out []Observation
	for range n {
		g := make([]float64, dim)
		for i := range g {
			g[i] = rng.NormFloat64()
			theta[i] += 0.1 * rng.NormFloat64()
		}
		out = append(out, Observation{DLdT: -0.5 + 0.3*rng.NormFloat64(), Grad: g, Theta: append([]float64{}, theta...)})
	}
	return out
}

// emaRef is the bias-corrected exponential average of xs by brute force:
// Σ (1−d)d^(n−1−k) x_k / Σ (1−d)d^(n−1−k).
func emaRef(xs []float64, d float64) float64 {
	var num, den float64
	for k, x := range xs {
		w := (1 - d) * math.Pow(d, float64(len(xs)-1-k))
		num += w * x
		den += w
	}
	return num / den
}

// TestPoliciesMatchBruteForce: over two update periods the feedback policy
// moves T by η·(Q_T + Q_Tu·δθ)/Q_TT with Q_Tu the bias-corrected average of
// (dL/dT)·Q_u and δθ the last iteration's change only, and the baseline by
// η·(EMA(dL/dT) + c·T); every average is recomputed here from scratch.
func TestPoliciesMatchBruteForce(t *testing.T) {
	const every, decay, lr, c, dim = 4, 0.7, 0.2, 0.4, 5
	obs := observations(2*every, dim)
	cfg := Config{LR: lr, C: c, Every: every, Decay: decay}
	fb, err := NewFeedback(1.5, cfg)
	require.NoError(t, err)
	bl, err := NewBaseline(1.5, cfg)
	require.NoError(t, err)
	tF, tB := 1.5, 1.5
	for n := 1; n <= len(obs); n++ {
		updF, updB := fb.Observe(obs[n-1]), bl.Observe(obs[n-1])
		require.Equal(t, n%every == 0, updF)
		require.Equal(t, n%every == 0, updB)
		if n%every != 0 {
			continue
		}
		var ds []float64
		for _, o := range obs[:n] {
			ds = append(ds, o.DLdT)
		}
		m1 := emaRef(ds, decay)
		// Baseline.
		tB -= lr * (m1 + c*tB)
		assert.InDelta(t, tB, bl.T(), 1e-12, "baseline after %d", n)
		assert.False(t, bl.Last().Limited)
		// Feedback.
		fbTerm := 0.0
		for i := range dim {
			var qtu []float64
			for _, o := range obs[:n] {
				qtu = append(qtu, o.DLdT*o.Grad[i])
			}
			fbTerm += emaRef(qtu, decay) * (obs[n-1].Theta[i] - obs[n-2].Theta[i])
		}
		qT, qTT := c*tF+m1, c+m1*m1
		tF -= lr * (qT + fbTerm) / qTT
		u := fb.Last()
		assert.InDelta(t, fbTerm, u.Feedback, 1e-12, "Q_Tu·δθ after %d", n)
		assert.InDelta(t, qT, u.QT, 1e-12, "Q_T after %d", n)
		assert.InDelta(t, qTT, u.QTT, 1e-12, "Q_TT after %d", n)
		assert.InDelta(t, tF, fb.T(), 1e-12, "feedback after %d", n)
		assert.False(t, u.Limited)
	}
}

// TestConfigRejectsNonFinite: NaN or infinite settings are ErrInvalid.
func TestConfigRejectsNonFinite(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, cfg := range []Config{{LR: inf}, {LR: nan}, {LR: 1, C: inf}, {LR: 1, C: nan}, {LR: 1, Floor: nan},
		{LR: 1, Floor: inf}, {LR: 1, Floor: -1}, {LR: 1, Decay: nan}, {LR: 1, Decay: 1}, {LR: 1, Every: -1}} {
		_, err := NewFeedback(1, cfg)
		assert.ErrorIs(t, err, ErrInvalid, "%+v", cfg)
		_, err = NewBaseline(1, cfg)
		assert.ErrorIs(t, err, ErrInvalid, "%+v", cfg)
	}
	_, err := NewFeedback(math.NaN(), Config{LR: 1})
	assert.ErrorIs(t, err, ErrInvalid)
}

// TestStateRoundTripContinuesExactly: a policy restored (through JSON) from
// another's state mid-period makes bit-identical updates afterwards.
func TestStateRoundTripContinuesExactly(t *testing.T) {
	obs := observations(20, 3)
	for _, mk := range []func(float64, Config) (Policy, error){NewFeedback, NewBaseline} {
		cfg := Config{LR: 0.2, C: 0.3, Every: 3, Decay: 0.8, Warmup: 2}
		a, err := mk(1, cfg)
		require.NoError(t, err)
		for _, o := range obs[:7] {
			a.Observe(o)
		}
		data, err := json.Marshal(a.State())
		require.NoError(t, err)
		var st State
		require.NoError(t, json.Unmarshal(data, &st))
		b, err := mk(1, cfg)
		require.NoError(t, err)
		require.NoError(t, b.Restore(st))
		for i, o := range obs[7:] {
			require.Equal(t, a.Observe(o), b.Observe(o))
			require.Equal(t, a.T(), b.T(), "%s observation %d", a.Name(), i+8)
			require.Equal(t, a.Last(), b.Last())
		}
		other, err := map[string]func(float64, Config) (Policy, error){"feedback": NewBaseline, "baseline": NewFeedback}[a.Name()](1, cfg)
		require.NoError(t, err)
		assert.ErrorIs(t, other.Restore(st), ErrInvalid, "a state restores only into its own kind")
	}
}
