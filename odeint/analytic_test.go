package odeint

import (
	"fmt"
	"math"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// analyticProblem is an ODE with a closed-form solution.
type analyticProblem struct {
	name  string
	f     Func
	y0    []float64
	shape []int
	ts    []float64
	exact func(t float64) []float64
}

func linspace(a, b float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = a + (b-a)*float64(i)/float64(n-1)
	}
	return out
}

func analyticProblems() []analyticProblem {
	// dy/dt = A·y for a batch of 2 vectors: rows of y are states, F = y·Aᵀ.
	aVals := []float64{-0.5, 1.0, 0.2, -1.0, -0.3, 0.4, 0.1, -0.6, -0.8}
	aMat := mat.NewDense(3, 3, aVals)
	linY0 := []float64{1, 0, -1, 0.5, 2, 0.3}
	omega := 2.0
	return []analyticProblem{
		{
			name:  "decay",
			f:     field(func(_, y *Node) *Node { return MulScalar(y, -1.3) }),
			y0:    []float64{1, -2, 5},
			shape: []int{3},
			ts:    linspace(0, 3, 7),
			exact: func(t float64) []float64 {
				e := math.Exp(-1.3 * t)
				return []float64{e, -2 * e, 5 * e}
			},
		},
		{
			name: "linear expm",
			f: field(func(_, y *Node) *Node {
				a := Const(y.Graph(), [][]float64{{aVals[0], aVals[1], aVals[2]}, {aVals[3], aVals[4], aVals[5]}, {aVals[6], aVals[7], aVals[8]}})
				return Dot(y, Transpose(a, 0, 1))
			}),
			y0:    linY0,
			shape: []int{2, 3},
			ts:    linspace(0, 4, 9),
			exact: func(t float64) []float64 {
				var scaled, e mat.Dense
				scaled.Scale(t, aMat)
				e.Exp(&scaled)
				out := make([]float64, 0, 6)
				for b := range 2 {
					var v mat.VecDense
					v.MulVec(&e, mat.NewVecDense(3, linY0[3*b:3*b+3]))
					out = append(out, v.RawVector().Data...)
				}
				return out
			},
		},
		{
			name:  "cos t",
			f:     field(func(t, y *Node) *Node { return Add(ZerosLike(y), Cos(t)) }),
			y0:    []float64{0.5, -1},
			shape: []int{2},
			ts:    linspace(0, 10, 11),
			exact: func(t float64) []float64 { return []float64{0.5 + math.Sin(t), -1 + math.Sin(t)} },
		},
		{
			name: "rotation",
			f: field(func(_, y *Node) *Node {
				r := Const(y.Graph(), [][]float64{{0, omega}, {-omega, 0}}) // [y1, y2]·R = [−ω y2, ω y1]
				return Dot(y, r)
			}),
			y0:    []float64{1, 0},
			shape: []int{1, 2},
			ts:    linspace(0, 3*math.Pi, 13), // three periods
			exact: func(t float64) []float64 { return []float64{math.Cos(omega * t), math.Sin(omega * t)} },
		},
	}
}

// TestDopri5MatchesAnalyticSolutions checks the global error bound
// ≤ 20·tol·max(1, |y|) at every output time, and that it shrinks with tol.
func TestDopri5MatchesAnalyticSolutions(t *testing.T) {
	for _, p := range analyticProblems() {
		t.Run(p.name, func(t *testing.T) {
			prevErr := math.Inf(1)
			for _, tol := range []float64{1e-3, 1e-6, 1e-9} {
				y0 := tensors.FromFlatDataAndDimensions(p.y0, p.shape...)
				sol := solve(t, p.f, []*tensors.Tensor{y0}, p.ts, tolOpts(Dopri5, tol))
				worst := 0.0
				for i, ti := range p.ts {
					e := maxScaledErr(flat64(t, sol.Ys[i][0]), p.exact(ti))
					assert.LessOrEqualf(t, e, 20*tol, "tol=%g t=%g", tol, ti)
					worst = math.Max(worst, e)
				}
				assert.Less(t, worst, prevErr, "error must shrink with the tolerance (tol=%g)", tol)
				prevErr = worst
				t.Logf("tol=%g: max scaled error %.3g, %+v", tol, worst, sol.Stats)
			}
		})
	}
}

// TestBosh3MatchesAnalyticSolutions checks bosh3 at moderate tolerances. Its
// error estimate is only second order, so the global error over three
// rotation periods reaches ~60·tol: the bound is 100·tol.
func TestBosh3MatchesAnalyticSolutions(t *testing.T) {
	for _, p := range analyticProblems() {
		for _, tol := range []float64{1e-3, 1e-6} {
			y0 := tensors.FromFlatDataAndDimensions(p.y0, p.shape...)
			sol := solve(t, p.f, []*tensors.Tensor{y0}, p.ts, tolOpts(Bosh3, tol))
			for i, ti := range p.ts {
				e := maxScaledErr(flat64(t, sol.Ys[i][0]), p.exact(ti))
				assert.LessOrEqualf(t, e, 100*tol, "%s tol=%g t=%g", p.name, tol, ti)
			}
		}
	}
}

// TestBackwardIntegrationRetracesForward solves the rotation forwards, then
// from its end backwards, and compares both trajectories at the same times.
func TestBackwardIntegrationRetracesForward(t *testing.T) {
	for _, method := range []Method{Dopri5, Bosh3, RK4} {
		t.Run(string(method), func(t *testing.T) {
			p := analyticProblems()[3]
			opts := tolOpts(method, 1e-9)
			opts.Step = 0.01
			fwd := solve(t, p.f, []*tensors.Tensor{tensors.FromFlatDataAndDimensions(p.y0, p.shape...)}, p.ts, opts)
			rev := make([]float64, len(p.ts))
			for i := range p.ts {
				rev[i] = p.ts[len(p.ts)-1-i]
			}
			yEnd := tensors.FromFlatDataAndDimensions(p.exact(rev[0]), p.shape...)
			bwd := solve(t, p.f, []*tensors.Tensor{yEnd}, rev, opts)
			for i := range p.ts {
				got := flat64(t, bwd.Ys[len(p.ts)-1-i][0])
				want := flat64(t, fwd.Ys[i][0])
				assert.LessOrEqualf(t, maxScaledErr(got, want), 1e-6, "t=%g", p.ts[i])
				assert.LessOrEqualf(t, maxScaledErr(got, p.exact(p.ts[i])), 1e-6, "t=%g", p.ts[i])
			}
		})
	}
}

// TestFloat32Solve checks float32 states work, at a tolerance float32 can meet.
func TestFloat32Solve(t *testing.T) {
	p := analyticProblems()[0]
	y0 := tensors.FromValue([]float32{1, -2, 5})
	f := field(func(_, y *Node) *Node { return MulScalar(y, -1.3) })
	for _, method := range []Method{Dopri5, Bosh3} {
		sol := solve(t, f, []*tensors.Tensor{y0}, p.ts, tolOpts(method, 1e-5))
		require.Equal(t, "Float32", sol.Final()[0].DType().String())
		for i, ti := range p.ts {
			assert.LessOrEqual(t, maxScaledErr(flat64(t, sol.Ys[i][0]), p.exact(ti)), 20e-5, fmt.Sprint(method, ti))
		}
	}
}
