package odeint

import (
	"errors"
	"math"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/internal/testutil"
)

// rotationWithAccumulator is a state tuple: a slow rotation y (shape [1,2])
// and a fast-growing, fast-oscillating accumulator (shape [1]) that does not
// feed back into y, like the adjoint's parameter-gradient accumulator.
func rotationWithAccumulator(_ *context.Context, t *Node, y []*Node) []*Node {
	r := Const(t.Graph(), [][]float64{{0, 1}, {-1, 0}})
	acc := Add(ZerosLike(y[1]), Mul(Exp(MulScalar(t, 3)), Sin(MulScalar(t, 40))))
	return []*Node{Dot(y[0], r), acc}
}

// TestSemiNormSkipsAccumulator: leaving the accumulator out of error control
// takes fewer steps, and the controlled part keeps its accuracy.
func TestSemiNormSkipsAccumulator(t *testing.T) {
	ts := linspace(0, 2, 5)
	tol := 1e-6
	y0 := func() []*tensors.Tensor {
		return []*tensors.Tensor{tensors.FromValue([][]float64{{1, 0}}), tensors.FromValue([]float64{0})}
	}
	full := solve(t, rotationWithAccumulator, y0(), ts, tolOpts(Dopri5, tol))
	semiOpts := tolOpts(Dopri5, tol)
	semiOpts.NormExclude = []int{1}
	semi := solve(t, rotationWithAccumulator, y0(), ts, semiOpts)
	t.Logf("full norm: %+v; semi-norm: %+v", full.Stats, semi.Stats)
	assert.Less(t, float64(semi.Stats.Accepted+semi.Stats.Rejected), 0.5*float64(full.Stats.Accepted+full.Stats.Rejected))
	for i, ti := range ts {
		got := flat64(t, semi.Ys[i][0])
		assert.LessOrEqual(t, maxScaledErr(got, []float64{math.Cos(ti), math.Sin(ti)}), 20*tol)
	}
}

// TestRMSNormKind: the single-RMS norm also meets the tolerance on a tuple.
func TestRMSNormKind(t *testing.T) {
	ts := linspace(0, 2, 5)
	opts := tolOpts(Dopri5, 1e-6)
	opts.Norm = RMS
	sol := solve(t, rotationWithAccumulator,
		[]*tensors.Tensor{tensors.FromValue([][]float64{{1, 0}}), tensors.FromValue([]float64{0})}, ts, opts)
	for i, ti := range ts {
		assert.LessOrEqual(t, maxScaledErr(flat64(t, sol.Ys[i][0]), []float64{math.Cos(ti), math.Sin(ti)}), 20e-6)
	}
}

// TestDenseOutputMatchesStopExactly: a value produced by the interpolant
// agrees with a solve that ends at that time, and asking for many output
// times does not add steps.
func TestDenseOutputMatchesStopExactly(t *testing.T) {
	p := analyticProblems()[3] // rotation
	for _, method := range []Method{Dopri5, Bosh3} {
		tol := 1e-8
		y0 := []*tensors.Tensor{tensors.FromFlatDataAndDimensions(p.y0, p.shape...)}
		dense := solve(t, p.f, y0, linspace(0, 3, 61), tolOpts(method, tol))
		sparse := solve(t, p.f, y0, []float64{0, 3}, tolOpts(method, tol))
		assert.Equal(t, sparse.Stats.Accepted, dense.Stats.Accepted, "%s: output times must not shorten steps", method)
		for _, tk := range []float64{0.35, 1.05, 2.2} {
			idx := int(math.Round(tk / 0.05))
			stopped := solve(t, p.f, y0, []float64{0, tk}, tolOpts(method, tol))
			got := flat64(t, dense.Ys[idx][0])
			assert.LessOrEqualf(t, maxScaledErr(got, flat64(t, stopped.Final()[0])), 20*tol, "%s t=%g", method, tk)
			assert.LessOrEqualf(t, maxScaledErr(got, p.exact(tk)), 20*tol, "%s t=%g", method, tk)
		}
	}
}

// TestDopri5InterpolantIsFourthOrder: on one big step of y' = y, the
// mid-step interpolation error shrinks ≈ 2^5 when the step halves (local
// error O(h^5) of a fourth-order interpolant).
func TestDopri5InterpolantIsFourthOrder(t *testing.T) {
	f := field(func(_, y *Node) *Node { return y })
	midErr := func(h float64) float64 {
		opts := &Options{Method: Dopri5, RTol: 1, ATol: 1, FirstStep: h}
		sol := solve(t, f, []*tensors.Tensor{tensors.FromValue([]float64{1})}, []float64{0, 0.3 * h, h}, opts)
		require.Equal(t, 1, sol.Stats.Accepted)
		return math.Abs(flat64(t, sol.Ys[1][0])[0] - math.Exp(0.3*h))
	}
	e1, e2 := midErr(0.4), midErr(0.2)
	assert.InDelta(t, 5, math.Log2(e1/e2), 0.4, "errors %g, %g", e1, e2)
}

// TestContextVariablesInVectorField: F reads a trainable variable; changing
// its value changes the solution without recompiling.
func TestContextVariablesInVectorField(t *testing.T) {
	backend := testutil.Backend()
	ctx := context.New()
	f := func(ctx *context.Context, _ *Node, y []*Node) []*Node {
		k := ctx.In("field").VariableWithValue("k", -0.5).ValueGraph(y[0].Graph())
		return []*Node{Mul(y[0], k)}
	}
	solver, err := NewSolver(backend, ctx, f, tolOpts(Dopri5, 1e-9))
	require.NoError(t, err)
	defer solver.Finalize()
	y0 := []*tensors.Tensor{tensors.FromValue([]float64{2})}
	sol, err := solver.Solve(y0, []float64{0, 1})
	require.NoError(t, err)
	assert.InDelta(t, 2*math.Exp(-0.5), flat64(t, sol.Final()[0])[0], 1e-8)
	compiled := solver.Compilations()

	v := ctx.InspectVariable("/field", "k")
	require.NotNil(t, v)
	require.NoError(t, v.SetValue(tensors.FromScalar(-2.0)))
	sol, err = solver.Solve(y0, []float64{0, 1})
	require.NoError(t, err)
	assert.InDelta(t, 2*math.Exp(-2), flat64(t, sol.Final()[0])[0], 1e-8)
	assert.Equal(t, compiled, solver.Compilations())
}

// TestCompiledOnce: after the first solve, other times (also backwards), step
// sizes and initial values of the same shapes compile nothing new.
func TestCompiledOnce(t *testing.T) {
	p := analyticProblems()[1] // linear expm, shape [2,3]
	solver, err := NewSolver(testutil.Backend(), nil, p.f, tolOpts(Dopri5, 1e-6))
	require.NoError(t, err)
	defer solver.Finalize()
	mk := func(scale float64) []*tensors.Tensor {
		vals := make([]float64, len(p.y0))
		for i, v := range p.y0 {
			vals[i] = v * scale
		}
		return []*tensors.Tensor{tensors.FromFlatDataAndDimensions(vals, p.shape...)}
	}
	_, err = solver.Solve(mk(1), linspace(0, 1, 4))
	require.NoError(t, err)
	compiled := solver.Compilations()
	assert.Equal(t, 3, compiled, "first step, RK step and interpolant")
	for _, run := range []struct {
		ts    []float64
		scale float64
	}{{linspace(0, 2.5, 11), 3}, {[]float64{1, 0.2, -0.7}, -1}, {[]float64{5, 5.001}, 0.1}} {
		sol, err := solver.Solve(mk(run.scale), run.ts)
		require.NoError(t, err)
		require.Len(t, sol.Ys, len(run.ts))
	}
	assert.Equal(t, compiled, solver.Compilations(), "no recompilation for same shapes")
}

// TestObserverAndDropOutputs: the observer sees every output time in order;
// DropOutputs keeps only the final state, equal to the full solve's.
func TestObserverAndDropOutputs(t *testing.T) {
	p := analyticProblems()[3]
	ts := linspace(0, 2, 9)
	var seen []float64
	opts := tolOpts(Dopri5, 1e-8)
	opts.DropOutputs = true
	opts.Observer = func(i int, ti float64, y []*tensors.Tensor) error {
		assert.Equal(t, ts[i], ti)
		assert.LessOrEqual(t, maxScaledErr(flat64(t, y[0]), p.exact(ti)), 20e-8)
		seen = append(seen, ti)
		return nil
	}
	sol, err := Solve(testutil.Backend(), nil, p.f, []*tensors.Tensor{tensors.FromFlatDataAndDimensions(p.y0, p.shape...)}, ts, opts)
	require.NoError(t, err)
	assert.Equal(t, ts, seen)
	require.Len(t, sol.Ys, 1)
	assert.LessOrEqual(t, maxScaledErr(flat64(t, sol.Final()[0]), p.exact(2)), 20e-8)

	stop := errors.New("enough")
	opts.Observer = func(i int, _ float64, _ []*tensors.Tensor) error {
		if i == 3 {
			return stop
		}
		return nil
	}
	_, err = Solve(testutil.Backend(), nil, p.f, []*tensors.Tensor{tensors.FromFlatDataAndDimensions(p.y0, p.shape...)}, ts, opts)
	assert.ErrorIs(t, err, stop)
}

// TestErrorsAreTyped: every failure mode returns its sentinel, with the time.
func TestErrorsAreTyped(t *testing.T) {
	decay := field(func(_, y *Node) *Node { return Neg(y) })
	blowUp := field(func(_, y *Node) *Node { return Square(y) }) // y = 1/(1−t): singular at t = 1
	nanAfterHalf := field(func(tt, y *Node) *Node {              // log(0.5 − t) is NaN for t > 0.5
		return Add(ZerosLike(y), Log(Sub(Scalar(tt.Graph(), tt.DType(), 0.5), tt)))
	})
	wrongShape := func(_ *context.Context, _ *Node, y []*Node) []*Node {
		return []*Node{Concatenate([]*Node{y[0], y[0]}, 0)}
	}
	wrongCount := func(_ *context.Context, _ *Node, y []*Node) []*Node { return []*Node{y[0], y[0]} }
	one := func() []*tensors.Tensor { return []*tensors.Tensor{tensors.FromValue([]float64{1})} }
	cases := []struct {
		name   string
		f      Func
		y0     []*tensors.Tensor
		ts     []float64
		opts   *Options
		want   error
		wantT  float64
		checkT bool
	}{
		{"rtol zero", decay, one(), []float64{0, 1}, &Options{RTol: 0, ATol: 1e-6}, ErrInvalidOptions, 0, true},
		{"rtol negative", decay, one(), []float64{0, 1}, &Options{RTol: -1, ATol: 1e-6}, ErrInvalidOptions, 0, true},
		{"atol zero", decay, one(), []float64{0, 1}, &Options{RTol: 1e-6}, ErrInvalidOptions, 0, true},
		{"atol NaN", decay, one(), []float64{0, 1}, &Options{RTol: 1e-6, ATol: math.NaN()}, ErrInvalidOptions, 0, true},
		{"unknown method", decay, one(), []float64{0, 1}, &Options{Method: "rk45"}, ErrInvalidOptions, 0, true},
		{"negative step", decay, one(), []float64{0, 1}, &Options{Method: RK4, Step: -0.1}, ErrInvalidOptions, 0, true},
		{"bad exclude", decay, one(), []float64{0, 1}, &Options{RTol: 1, ATol: 1, NormExclude: []int{3}}, ErrInvalidOptions, 0, true},
		{"all excluded", decay, one(), []float64{0, 1}, &Options{RTol: 1, ATol: 1, NormExclude: []int{0}}, ErrInvalidOptions, 0, true},
		{"ts not monotone", decay, one(), []float64{0, 1, 0.5}, nil, ErrInvalidOptions, 0, true},
		{"ts repeated", decay, one(), []float64{0, 1, 1}, nil, ErrInvalidOptions, 0, true},
		{"ts too short", decay, one(), []float64{0}, nil, ErrInvalidOptions, 0, true},
		{"ts NaN", decay, one(), []float64{0, math.NaN()}, nil, ErrInvalidOptions, 0, true},
		{"empty state", decay, nil, []float64{0, 1}, nil, ErrInvalidOptions, 0, true},
		{"mixed dtypes", func(_ *context.Context, _ *Node, y []*Node) []*Node { return y },
			[]*tensors.Tensor{tensors.FromValue([]float64{1}), tensors.FromValue([]float32{1})},
			[]float64{0, 1}, nil, ErrShapeMismatch, 0, true},
		{"int state", decay, []*tensors.Tensor{tensors.FromValue([]int32{1})}, []float64{0, 1}, nil, ErrInvalidOptions, 0, true},
		{"wrong output shape", wrongShape, one(), []float64{0, 1}, nil, ErrShapeMismatch, 0, true},
		{"wrong output count", wrongCount, one(), []float64{0, 1}, nil, ErrShapeMismatch, 0, true},
		{"wrong shape fixed", wrongShape, one(), []float64{0, 1}, &Options{Method: RK4}, ErrShapeMismatch, 0, true},
		{"NaN initial state", decay, []*tensors.Tensor{tensors.FromValue([]float64{math.NaN()})}, []float64{0, 1}, nil, ErrNonFinite, 0, true},
		{"Inf initial state rk4", decay, []*tensors.Tensor{tensors.FromValue([]float64{math.Inf(1)})}, []float64{0, 1}, &Options{Method: RK4}, ErrNonFinite, 0, true},
		{"NaN field", nanAfterHalf, one(), []float64{0, 1}, tolOpts(Dopri5, 1e-6), ErrNonFinite, 0.5, false},
		{"NaN field rk4", nanAfterHalf, one(), []float64{0, 1}, &Options{Method: RK4, Step: 0.1}, ErrNonFinite, 0.4, true},
		{"blow-up underflow", blowUp, one(), []float64{0, 2}, tolOpts(Dopri5, 1e-6), ErrStepUnderflow, 1, false},
		{"max steps", decay, one(), []float64{0, 100}, &Options{Method: Dopri5, RTol: 1e-10, ATol: 1e-10, MaxSteps: 5}, ErrMaxSteps, 0, false},
		{"max steps fixed", decay, one(), []float64{0, 1}, &Options{Method: Euler, Step: 0.01, MaxSteps: 10}, ErrMaxSteps, 0.1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var sol *Solution
			var err error
			require.NotPanics(t, func() { sol, err = Solve(testutil.Backend(), nil, c.f, c.y0, c.ts, c.opts) })
			require.Error(t, err)
			assert.Nil(t, sol)
			assert.ErrorIs(t, err, c.want)
			var oe *Error
			require.ErrorAs(t, err, &oe)
			if c.checkT {
				assert.InDelta(t, c.wantT, oe.T, 1e-9, "error time")
			} else if c.wantT != 0 {
				assert.InDelta(t, c.wantT, oe.T, 0.05, "error time")
			}
			t.Log(err)
		})
	}
}

// TestNilTensorIsInvalid covers a nil entry in the state tuple.
func TestNilTensorIsInvalid(t *testing.T) {
	_, err := Solve(testutil.Backend(), nil, field(func(_, y *Node) *Node { return y }),
		[]*tensors.Tensor{nil}, []float64{0, 1}, nil)
	assert.ErrorIs(t, err, ErrInvalidOptions)
	_, err = NewSolver(nil, nil, nil, nil)
	assert.ErrorIs(t, err, ErrInvalidOptions)
}
