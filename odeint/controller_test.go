package odeint

import (
	"errors"
	"math"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snopt-go/snopt/internal/testutil"
)

// hostAdaptive integrates y' = M·y with an explicit embedded tableau on the
// host, with the textbook controller written out here independently of
// controller.go: the step that would have met the tolerance, h·min(10,
// max(0.9·ratio^(−1/(q+1)), 0.2)), never shrinking after an accepted step
// (Hairer, Nørsett & Wanner I, II.4). It returns y(t1) and the accepted and
// rejected step counts.
func hostAdaptive(tb *Tableau, m [][]float64, y0 []float64, t1, h0, rtol, atol float64) ([]float64, int, int) {
	n := len(y0)
	f := func(y []float64) []float64 {
		out := make([]float64, n)
		for i := range n {
			for j := range n {
				out[i] += m[i][j] * y[j]
			}
		}
		return out
	}
	axpy := func(y []float64, h float64, w []float64, ks [][]float64) []float64 {
		out := append([]float64{}, y...)
		for s, wk := range w {
			for i := range n {
				out[i] += h * wk * ks[s][i]
			}
		}
		return out
	}
	q := float64(tb.EmbeddedOrder)
	y, t, h := append([]float64{}, y0...), 0.0, h0
	acc, rej := 0, 0
	for t < t1 {
		last := h >= t1-t
		if last {
			h = t1 - t
		}
		ks := make([][]float64, tb.Stages())
		for s := range ks {
			ks[s] = f(axpy(y, h, tb.A[s], ks[:s]))
		}
		y1 := axpy(y, h, tb.B, ks)
		e := axpy(make([]float64, n), h, tb.BErr, ks)
		sum := 0.0
		for i := range n {
			sc := atol + rtol*math.Max(math.Abs(y[i]), math.Abs(y1[i]))
			sum += (e[i] / sc) * (e[i] / sc)
		}
		ratio := math.Sqrt(sum / float64(n))
		lower := 0.2
		if ratio <= 1 {
			acc++
			lower = 1
			y, t = y1, t+h
			if last {
				t = t1
			}
		} else {
			rej++
		}
		h *= math.Min(10, math.Max(0.9*math.Pow(ratio, -1/(q+1)), lower))
	}
	return y, acc, rej
}

// TestAdaptiveLoopMatchesHostController: dopri5 and bosh3 on a
// non-symmetric linear system, started with a far too large step so the
// controller rejects and then grows steps, give the same accepted and
// rejected counts and the same y(t1) to 1e-12 as the host reference.
func TestAdaptiveLoopMatchesHostController(t *testing.T) {
	m := [][]float64{{-0.5, 2.0, 0.1}, {-1.5, -0.3, 0.4}, {0.2, -0.7, -1.1}}
	y0 := []float64{1, -0.5, 0.25}
	mt := tensors.FromValue([][]float64{{m[0][0], m[1][0], m[2][0]}, {m[0][1], m[1][1], m[2][1]}, {m[0][2], m[1][2], m[2][2]}})
	f := field(func(_, y *Node) *Node { return Dot(y, Const(y.Graph(), mt)) })
	for _, method := range []Method{Dopri5, Bosh3} {
		tb, err := TableauFor(method)
		require.NoError(t, err)
		const t1, h0, rtol, atol = 3.0, 1.5, 1e-6, 1e-8
		want, acc, rej := hostAdaptive(tb, m, y0, t1, h0, rtol, atol)
		require.Positive(t, rej, "the test must exercise rejections")
		sol := solve(t, f, []*tensors.Tensor{tensors.FromValue([][]float64{y0})}, []float64{0, t1},
			&Options{Method: method, RTol: rtol, ATol: atol, FirstStep: h0})
		assert.Equal(t, acc, sol.Stats.Accepted, "%s accepted", method)
		assert.Equal(t, rej, sol.Stats.Rejected, "%s rejected", method)
		got := flat64(t, sol.Ys[1][0])
		for i := range want {
			assert.InDelta(t, want[i], got[i], 1e-12*math.Max(1, math.Abs(want[i])), "%s y[%d]", method, i)
		}
	}
}

// TestFixedStepCountOverflowIsMaxSteps: a Step so small that the step count
// overflows an int is ErrMaxSteps, not one wrong step.
func TestFixedStepCountOverflowIsMaxSteps(t *testing.T) {
	f := field(func(_, y *Node) *Node { return Neg(y) })
	for _, step := range []float64{1e-300, 5e-324, 1e-6} {
		_, err := Solve(testutil.Backend(), nil, f, []*tensors.Tensor{tensors.FromValue([]float64{1})}, []float64{0, 1},
			&Options{Method: RK4, Step: step, MaxSteps: 1000})
		require.Error(t, err, "step %g", step)
		assert.True(t, errors.Is(err, ErrMaxSteps), "step %g: %v", step, err)
	}
}

// TestZeroFieldInFloat32AwayFromZero: a vanishing field in float32 on
// [2, 3] used to start from the selection's 1e-6 fallback, below float32's
// resolution at t = 2, and fail with a step size underflow.
func TestZeroFieldInFloat32AwayFromZero(t *testing.T) {
	f := field(func(_, y *Node) *Node { return ZerosLike(y) })
	y0 := tensors.FromValue([][]float32{{1, -2}})
	sol, err := Solve(testutil.Backend(), nil, f, []*tensors.Tensor{y0}, []float64{2, 3}, &Options{RTol: 1e-3, ATol: 1e-3})
	require.NoError(t, err)
	assert.Equal(t, []float32{1, -2}, tensors.MustCopyFlatData[float32](sol.Ys[1][0]))
}

// TestSolveFromCarriesTheStepSize: a solve on [1, 2] started from the
// step the solve on [0, 1] ended with needs fewer evaluations than a fresh
// one (no selection, no regrowth) and is as accurate; bad first steps are
// ErrInvalidOptions; fixed-grid methods ignore it.
func TestSolveFromCarriesTheStepSize(t *testing.T) {
	f := field(func(_, y *Node) *Node { return Neg(y) })
	s, err := NewSolver(testutil.Backend(), nil, f, &Options{RTol: 1e-8, ATol: 1e-10})
	require.NoError(t, err)
	y0 := []*tensors.Tensor{tensors.FromValue([]float64{1})}
	first, err := s.Solve(y0, []float64{0, 1})
	require.NoError(t, err)
	require.Positive(t, first.Stats.NextStep)
	carried, err := s.SolveFrom(first.Final(), []float64{1, 2}, first.Stats.NextStep)
	require.NoError(t, err)
	fresh, err := s.Solve(first.Final(), []float64{1, 2})
	require.NoError(t, err)
	t.Logf("NFE on [1, 2]: carried %d, fresh %d", carried.Stats.NFE, fresh.Stats.NFE)
	assert.Less(t, carried.Stats.NFE, fresh.Stats.NFE)
	assert.InDelta(t, math.Exp(-2), flat64(t, carried.Final()[0])[0], 1e-7)
	for _, bad := range []float64{-1, math.NaN(), math.Inf(1)} {
		_, err := s.SolveFrom(y0, []float64{0, 1}, bad)
		assert.ErrorIs(t, err, ErrInvalidOptions, "%g", bad)
	}
	rk, err := NewSolver(testutil.Backend(), nil, f, &Options{Method: RK4, Step: 0.1})
	require.NoError(t, err)
	a, err := rk.SolveFrom(y0, []float64{0, 1}, 0.37)
	require.NoError(t, err)
	b, err := rk.Solve(y0, []float64{0, 1})
	require.NoError(t, err)
	assert.Equal(t, flat64(t, b.Final()[0]), flat64(t, a.Final()[0]))
}
