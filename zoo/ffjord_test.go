package zoo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/snopt-go/snopt/adjointx"
	"github.com/snopt-go/snopt/field"
	"github.com/snopt-go/snopt/internal/testutil"
	"github.com/snopt-go/snopt/odeint"
	"github.com/snopt-go/snopt/zoo/datasets"
)

func float64Batch(rng *rand.Rand, n, d int) *Batch {
	x := make([]float64, n*d)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	return &Batch{X: tensors.FromFlatDataAndDimensions(x, n, d), Size: n}
}

func tightSolver() *odeint.Options {
	return &odeint.Options{Method: odeint.Dopri5, RTol: 1e-10, ATol: 1e-10}
}

func setVar(t *testing.T, ctx *context.Context, scope, name string, vals []float64) {
	v := ctx.InspectVariable(scope, name)
	require.NotNil(t, v, scope+"/"+name)
	require.NoError(t, v.SetValue(tensors.FromFlatDataAndDimensions(vals, v.Shape().Dimensions...)))
}

// TestFFJORDLinearFlowLikelihood: with one ConcatSquashLinear layer whose
// gate and hyper-bias do not depend on t, block k's field is linear,
// dz/dt = z·M_k with M_k = W_k·diag(sigmoid(b_g,k)), so z(T) = z(0)·e^{T·M_k}
// and log p(x) = log N(x·e^{T·M_1}·e^{T·M_2}) + T·Σ_k tr M_k. The model's
// NLL (exact trace) must match this closed form.
func TestFFJORDLinearFlowLikelihood(t *testing.T) {
	const d, n, tEnd = 3, 6, 0.8
	ctx := context.New()
	m, err := NewFFJORD(testutil.Backend(), ctx, FFJORDConfig{Dim: d, Activation: "tanh", Blocks: 2, T1: tEnd,
		Solver: tightSolver()})
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(4, 4))
	b := float64Batch(rng, n, d)
	_, _, err = m.Evaluate(b) // creates the variables
	require.NoError(t, err)
	prod := mat.NewDense(d, d, nil)
	prod.Copy(eye(d))
	traceSum := 0.0
	for k := range 2 {
		scope := fmt.Sprintf("/block%d/csl0", k)
		w := make([]float64, d*d)
		for i := range w {
			w[i] = 0.6 * rng.NormFloat64()
		}
		gb := []float64{0.3, -1.1, 0.7}
		setVar(t, ctx, scope, "weights", w)
		setVar(t, ctx, scope, "biases", make([]float64, d))
		setVar(t, ctx, scope, "gate_weights", make([]float64, d))
		setVar(t, ctx, scope, "gate_biases", gb)
		setVar(t, ctx, scope, "hyper_bias", make([]float64, d))
		mk := mat.NewDense(d, d, nil)
		for i := range d {
			for j := range d {
				mk.Set(i, j, tEnd*w[i*d+j]/(1+math.Exp(-gb[j])))
			}
		}
		traceSum += mat.Trace(mk)
		var e, next mat.Dense
		e.Exp(mk)
		next.Mul(prod, &e)
		prod.Copy(&next)
	}
	var z mat.Dense
	z.Mul(mat.NewDense(n, d, tensors.MustCopyFlatData[float64](b.X)), prod)
	want := 0.0
	for i := range n {
		logN := -0.5 * float64(d) * math.Log(2*math.Pi)
		for j := range d {
			logN -= z.At(i, j) * z.At(i, j) / 2
		}
		want -= (logN + traceSum) / n
	}
	got, _, err := m.Evaluate(b)
	require.NoError(t, err)
	assert.InDelta(t, want, got, 1e-8)
}

func eye(d int) *mat.Dense {
	e := mat.NewDense(d, d, nil)
	for i := range d {
		e.Set(i, i, 1)
	}
	return e
}

func smallFFJORD(t *testing.T, mode field.TraceMode, blocks int) (*FFJORD, *context.Context) {
	ctx := context.New()
	_ = ctx.SetRNGStateFromSeed(3)
	ctx = ctx.WithInitializer(initializers.RandomNormalFn(ctx, 0.4))
	m, err := NewFFJORD(testutil.Backend(), ctx, FFJORDConfig{Dim: 3, Hidden: []int{5, 4}, Activation: "softplus",
		Blocks: blocks, T1: 0.7, Trace: mode, EvalTrace: mode, Solver: tightSolver(), GridIntervals: 6, Seed: 9})
	require.NoError(t, err)
	return m, ctx
}

// TestFFJORDGradientMatchesFD: dL/dθ of a two-block flow (exact trace)
// against central differences of the loss, for variables of both blocks.
func TestFFJORDGradientMatchesFD(t *testing.T) {
	m, ctx := smallFFJORD(t, field.ExactTrace, 2)
	b := float64Batch(rand.New(rand.NewPCG(1, 2)), 5, 3)
	res, err := m.Step(b, false)
	require.NoError(t, err)
	require.Len(t, res.Grads, 2*3*5)
	for _, name := range []string{"block0/csl0/weights", "block1/csl1/gate_weights", "block0/csl2/hyper_bias",
		"block1/csl0/biases"} {
		i := strings.LastIndex(name, "/")
		v := ctx.InspectVariable("/"+name[:i], name[i+1:])
		require.NotNil(t, v, name)
		assertGradientMatchesFD(t, m, b, v, res.Grads[v.ScopeAndName()], []int{0, 1, 2}, 1e-6)
	}
}

// TestFFJORDHutchinsonStep: with Hutchinson probes, the gradient is that of
// the loss with the probes held fixed (finite differences of Step's loss
// from a restored probe state), and the probe state makes a step replayable.
func TestFFJORDHutchinsonStep(t *testing.T) {
	m, ctx := smallFFJORD(t, field.Hutchinson, 2)
	b := float64Batch(rand.New(rand.NewPCG(5, 2)), 5, 3)
	_, err := m.Step(b, false)
	require.NoError(t, err)
	state, err := m.MarshalBinary()
	require.NoError(t, err)
	res, err := m.Step(b, false)
	require.NoError(t, err)
	other, err := m.Step(b, false) // new probes, another estimate
	require.NoError(t, err)
	assert.NotEqual(t, res.Loss, other.Loss)

	v := ctx.InspectVariable("/block0/csl1", "weights")
	require.NotNil(t, v)
	orig := tensors.MustCopyFlatData[float64](v.MustValue())
	g := tensors.MustCopyFlatData[float64](res.Grads[v.ScopeAndName()])
	lossAt := func(i int, dx float64) float64 {
		vals := append([]float64{}, orig...)
		vals[i] += dx
		require.NoError(t, v.SetValue(tensors.FromFlatDataAndDimensions(vals, v.Shape().Dimensions...)))
		require.NoError(t, m.UnmarshalBinary(state))
		r, err := m.Step(b, false)
		require.NoError(t, err)
		return r.Loss
	}
	assert.Equal(t, res.Loss, lossAt(0, 0), "replay from the saved probe state")
	for _, i := range []int{0, 4, 11} {
		const h = 1e-5
		fd := (lossAt(i, h) - lossAt(i, -h)) / (2 * h)
		assert.InDelta(t, fd, g[i], 1e-6*math.Max(1, math.Abs(fd)), "weights[%d]", i)
	}
	require.Error(t, m.UnmarshalBinary([]byte("junk")))
}

// TestFFJORDStatsPerBlock: each block's layers get their own Kronecker
// statistics, under that block's names, and they equal the statistics of
// that block's backward pass alone.
func TestFFJORDStatsPerBlock(t *testing.T) {
	m, _ := smallFFJORD(t, field.Hutchinson, 2)
	b := float64Batch(rand.New(rand.NewPCG(7, 2)), 6, 3)
	state, err := m.MarshalBinary()
	require.NoError(t, err)
	res, err := m.Step(b, true)
	require.NoError(t, err)
	require.Len(t, res.Stats, 2*3)
	seen := map[string]bool{}
	for _, s := range res.Stats {
		seen[s.Layer] = true
	}
	for k := range 2 {
		for l := range 3 {
			assert.True(t, seen[fmt.Sprintf("/block%d/csl%d", k, l)], "block %d layer %d", k, l)
		}
	}
	// Block 1 alone: its statistics from the same probes and cotangents.
	require.NoError(t, m.UnmarshalBinary(state))
	fl, err := m.forward(b, m.blocks, field.Hutchinson, m.rng)
	require.NoError(t, err)
	alone := &adjointx.Stats{}
	_, err = m.blocks[1].Backward(fl.trs[1], [][]*tensors.Tensor{nil, fl.cot}, &adjointx.BackwardOptions{Stats: alone})
	require.NoError(t, err)
	byLayer := map[string]adjointx.LayerFactors{}
	for _, s := range alone.Layers {
		byLayer[s.Layer] = s
	}
	require.Len(t, byLayer, 3)
	for _, s := range res.Stats {
		if !strings.HasPrefix(s.Layer, "/block1/") {
			continue
		}
		alone := byLayer[s.Layer]
		assert.InDeltaSlice(t, tensors.MustCopyFlatData[float64](alone.A), tensors.MustCopyFlatData[float64](s.A), 1e-12)
		assert.InDeltaSlice(t, tensors.MustCopyFlatData[float64](alone.B), tensors.MustCopyFlatData[float64](s.B), 1e-12)
	}
}

// TestFFJORDTrainsWithEveryOptimizer: on a 3-D stand-in density, Adam, SGD
// and SNOpt lower the NLL of a fixed batch.
func TestFFJORDTrainsWithEveryOptimizer(t *testing.T) {
	dens, err := datasets.NewStandInDensity(3, 2)
	require.NoError(t, err)
	x, err := dens.Sample(64, rand.New(rand.NewPCG(1, 1)))
	require.NoError(t, err)
	vals := make([]float32, len(x.X))
	for i, v := range x.X {
		vals[i] = float32(v / 3)
	}
	b := &Batch{X: tensors.FromFlatDataAndDimensions(vals, x.Rows, x.Cols), Size: x.Rows}
	lrs := map[string]float64{"adam": 1e-2, "sgd": 0.1, "snopt": 0.05}
	for _, name := range []string{"adam", "sgd", "snopt"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.New()
			_ = ctx.SetRNGStateFromSeed(5)
			m, err := NewFFJORD(testutil.Backend(), ctx, FFJORDConfig{Dim: 3, Hidden: []int{16, 16}, Activation: "tanh",
				Blocks: 2, Solver: &odeint.Options{RTol: 1e-4, ATol: 1e-4}, GridIntervals: 8})
			require.NoError(t, err)
			before, after := trainFixed(t, m, ctx, optimizerFor(t, name, lrs[name]), b, 6)
			t.Logf("%s NLL %.4f → %.4f", name, before, after)
			assert.Less(t, after, before)
		})
	}
}

// TestFFJORDRejectsBadInput: configuration and batch errors are ErrInvalid.
func TestFFJORDRejectsBadInput(t *testing.T) {
	ctx := context.New()
	for _, cfg := range []FFJORDConfig{
		{Dim: 0, Activation: "tanh"}, {Dim: 2, Activation: "relu6"}, {Dim: 2, Activation: "tanh", Hidden: []int{0}},
		{Dim: 2, Activation: "tanh", T1: math.Inf(1)}, {Dim: 2, Activation: "tanh", Blocks: -1},
	} {
		_, err := NewFFJORD(testutil.Backend(), ctx, cfg)
		assert.ErrorIs(t, err, ErrInvalid, "%+v", cfg)
	}
	m, _ := smallFFJORD(t, field.Hutchinson, 1)
	_, err := m.Step(float64Batch(rand.New(rand.NewPCG(1, 1)), 4, 5), false)
	assert.ErrorIs(t, err, ErrInvalid)
	_, _, err = m.Evaluate(nil)
	assert.ErrorIs(t, err, ErrInvalid)
}

// TestFFJORDSampleInvertsTheFlow: a sample flowed forward through the
// blocks comes back to the base draw it started from.
func TestFFJORDSampleInvertsTheFlow(t *testing.T) {
	ctx := context.New()
	_ = ctx.SetRNGStateFromSeed(3)
	ctx = ctx.WithInitializer(initializers.RandomNormalFn(ctx, 0.4))
	m, err := NewFFJORD(testutil.Backend(), ctx, FFJORDConfig{Dim: 3, Hidden: []int{6}, Activation: "tanh", Blocks: 2,
		Solver: &odeint.Options{RTol: 1e-7, ATol: 1e-7}})
	require.NoError(t, err)
	x, err := m.Sample(7, 4)
	require.NoError(t, err)
	again, err := m.Sample(7, 4)
	require.NoError(t, err)
	assert.Equal(t, tensors.MustCopyFlatData[float32](x), tensors.MustCopyFlatData[float32](again))
	fl, err := m.forward(&Batch{X: x, Size: 7}, m.blocks, m.cfg.Trace, m.rng)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(4, 0x5a3b1e))
	z := tensors.MustCopyFlatData[float32](fl.trs[1].Final()[0])
	moved := 0.0
	xs := tensors.MustCopyFlatData[float32](x)
	for i, v := range z {
		want := rng.NormFloat64()
		assert.InDelta(t, want, float64(v), 1e-4, "z[%d]", i)
		moved += math.Abs(want - float64(xs[i]))
	}
	assert.Greater(t, moved, 0.1, "the flow must move the points")
	_, err = m.Sample(0, 1)
	assert.ErrorIs(t, err, ErrInvalid)
}
