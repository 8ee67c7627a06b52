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
)

func TestNewTableauValidates(t *testing.T) {
	good := Tableau{Name: "heun", C: []float64{0, 1}, A: [][]float64{{}, {1}}, B: []float64{0.5, 0.5}, Order: 2}
	_, err := NewTableau(good)
	require.NoError(t, err)

	cases := map[string]func(tb *Tableau){
		"row sum":    func(tb *Tableau) { tb.A = [][]float64{{}, {0.9}} },
		"b sum":      func(tb *Tableau) { tb.B = []float64{0.5, 0.6} },
		"berr sum":   func(tb *Tableau) { tb.BErr = []float64{0.1, 0}; tb.EmbeddedOrder = 1 },
		"c0":         func(tb *Tableau) { tb.C = []float64{0.1, 1}; tb.A = [][]float64{{}, {1}} },
		"row length": func(tb *Tableau) { tb.A = [][]float64{{}, {0.5, 0.5}} },
		"order":      func(tb *Tableau) { tb.Order = 0 },
		"cmid sum":   func(tb *Tableau) { tb.CMid = []float64{0.2, 0.2} },
	}
	for name, mutate := range cases {
		tb := good
		mutate(&tb)
		_, err := NewTableau(tb)
		assert.Truef(t, errors.Is(err, ErrInvalidOptions), "%s: got %v", name, err)
	}
}

func TestBuiltinTableauxFSAL(t *testing.T) {
	assert.True(t, Dopri5Tableau.FSAL())
	assert.True(t, Bosh3Tableau.FSAL())
	assert.False(t, RK4Tableau.FSAL())
	assert.Equal(t, 6, Dopri5Tableau.EvalsPerStep())
	assert.Equal(t, 3, Bosh3Tableau.EvalsPerStep())
	assert.Equal(t, 4, RK4Tableau.EvalsPerStep())
}

// forcedPendulum is a non-autonomous nonlinear system, so the convergence
// test exercises the full order conditions, not just the linear ones.
var forcedPendulum = func() Func {
	return func(_ *context.Context, t *Node, y []*Node) []*Node {
		g := t.Graph()
		// y = [θ, ω] (shape [2]) → [ω, −sin θ + 0.3 cos t]
		swap := Const(g, [][]float64{{0, 0}, {1, 0}}) // [θ, ω]·swap = [ω, 0]
		pick := Const(g, [][]float64{{0, 1}, {0, 0}}) // [θ, ω]·pick = [0, θ]
		lift := Const(g, []float64{0, 1})             // puts a scalar in the 2nd slot
		yRow := Reshape(y[0], 1, 2)
		dy := Reshape(Dot(yRow, swap), 2)
		sinTheta := Reshape(Dot(yRow, pick), 2)                        // [0, θ]
		force := Sub(MulScalar(Mul(lift, Cos(t)), 0.3), Sin(sinTheta)) // [0, 0.3cos t − sin θ]
		return []*Node{Add(dy, force)}
	}
}()

// fixedOnly returns a copy of tb without its error estimate (so it runs on a
// fixed grid), using the embedded weights as solution when embedded is set.
func fixedOnly(t *testing.T, tb *Tableau, embedded bool) *Tableau {
	t.Helper()
	c := *tb
	if embedded {
		c.B = diff(tb.B, tb.BErr)
		c.Order = tb.EmbeddedOrder
	}
	c.BErr, c.EmbeddedOrder, c.CMid = nil, 0, nil
	out, err := NewTableau(c)
	require.NoError(t, err)
	return out
}

// TestFixedGridConvergenceOrder checks that halving h divides the global
// error by ≈ 2^order, for every tableau (and dopri5's and bosh3's embedded
// solutions): the tableau data are right.
func TestFixedGridConvergenceOrder(t *testing.T) {
	ts := []float64{0, 2}
	y0 := tensors.FromValue([]float64{1, 0})
	ref := solve(t, forcedPendulum, []*tensors.Tensor{y0}, ts, tolOpts(Dopri5, 1e-13))
	want := flat64(t, ref.Final()[0])
	cases := []struct {
		name  string
		tb    *Tableau
		h     float64
		order int
	}{
		{"euler", EulerTableau, 0.01, 1},
		{"midpoint", MidpointTableau, 0.05, 2},
		{"rk4", RK4Tableau, 0.1, 4},
		{"bosh3", fixedOnly(t, Bosh3Tableau, false), 0.1, 3},
		{"bosh3-embedded", fixedOnly(t, Bosh3Tableau, true), 0.05, 2},
		{"dopri5", fixedOnly(t, Dopri5Tableau, false), 0.2, 5},
		{"dopri5-embedded", fixedOnly(t, Dopri5Tableau, true), 0.2, 4},
	}
	for _, c := range cases {
		errAt := func(h float64) float64 {
			sol := solve(t, forcedPendulum, []*tensors.Tensor{y0}, ts, &Options{Tableau: c.tb, Step: h})
			got := flat64(t, sol.Final()[0])
			return math.Hypot(got[0]-want[0], got[1]-want[1])
		}
		e1, e2 := errAt(c.h), errAt(c.h/2)
		slope := math.Log2(e1 / e2)
		t.Logf("%s: err(h)=%.3g err(h/2)=%.3g slope %.2f", c.name, e1, e2, slope)
		assert.InDeltaf(t, float64(c.order), slope, 0.35, "%s convergence slope", c.name)
	}
}
