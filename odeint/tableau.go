package odeint

import (
	"fmt"
	"math"
)

// Tableau is the Butcher tableau of an explicit Runge–Kutta method: a solver
// is data, and one generic stepper (rk.go) runs every tableau.
//
//	k_i = F(t + C_i h, y + h Σ_{j<i} A_i[j] k_j),  i = 0..s-1
//	y1  = y + h Σ_i B_i k_i
//	err = h Σ_i BErr_i k_i   (B minus the embedded method's weights)
//
// Build one with NewTableau, which validates it and derives FSAL.
type Tableau struct {
	// Name identifies the method in errors and logs.
	Name string
	// C are the nodes (C[0] = 0).
	C []float64
	// A are the rows of the strictly lower-triangular matrix: A[i] has i
	// entries, the weights of k_0..k_{i-1} in stage i (A[0] is empty).
	A [][]float64
	// B are the weights of the propagated solution.
	B []float64
	// BErr are B minus the embedded solution's weights; nil for a fixed-grid
	// method without an error estimate.
	BErr []float64
	// Order is the order of the propagated solution.
	Order int
	// EmbeddedOrder is the order of the embedded solution; the step
	// controller's exponent is 1/(EmbeddedOrder+1). Zero for fixed-grid methods.
	EmbeddedOrder int
	// CMid, when set, are weights giving y(t + h/2) = y + h Σ_i CMid_i k_i to
	// fourth order: dense output then uses a quartic through y0, y_mid, y1
	// with end slopes f0, f1. Without it dense output is cubic Hermite.
	CMid []float64

	fsal bool
}

// Stages is the number of stages s.
func (tb *Tableau) Stages() int { return len(tb.C) }

// Adaptive reports whether the tableau has an embedded error estimate.
func (tb *Tableau) Adaptive() bool { return tb.BErr != nil }

// FSAL reports whether the last stage is evaluated at (t+h, y1) ("first same
// as last"), so it serves as the next step's first stage at no extra cost.
func (tb *Tableau) FSAL() bool { return tb.fsal }

// EvalsPerStep is the number of vector-field evaluations of one step: the
// first stage comes from the previous step (or the start), and a non-FSAL
// method evaluates F(t+h, y1) at the end for the next step and dense output.
func (tb *Tableau) EvalsPerStep() int {
	if tb.fsal {
		return tb.Stages() - 1
	}
	return tb.Stages()
}

const tableauTol = 1e-12

// NewTableau validates a tableau — rows of A sum to C, Σ B = 1, Σ BErr = 0,
// Σ CMid = 1/2, consistent lengths — and derives whether it is FSAL.
func NewTableau(tb Tableau) (*Tableau, error) {
	s := len(tb.C)
	bad := func(format string, args ...any) (*Tableau, error) {
		return nil, fmt.Errorf("%w: tableau %q: %s", ErrInvalidOptions, tb.Name, fmt.Sprintf(format, args...))
	}
	if s == 0 {
		return bad("no stages")
	}
	if tb.C[0] != 0 {
		return bad("C[0] = %g, want 0", tb.C[0])
	}
	if len(tb.A) != s || len(tb.B) != s {
		return bad("len(A) = %d and len(B) = %d, want %d rows", len(tb.A), len(tb.B), s)
	}
	for i, row := range tb.A {
		if len(row) != i {
			return bad("row A[%d] has %d entries, want %d", i, len(row), i)
		}
		if math.Abs(sum(row)-tb.C[i]) > tableauTol {
			return bad("row A[%d] sums to %g, want C[%d] = %g", i, sum(row), i, tb.C[i])
		}
	}
	if math.Abs(sum(tb.B)-1) > tableauTol {
		return bad("B sums to %g, want 1", sum(tb.B))
	}
	if tb.BErr != nil {
		if len(tb.BErr) != s {
			return bad("len(BErr) = %d, want %d", len(tb.BErr), s)
		}
		if math.Abs(sum(tb.BErr)) > tableauTol {
			return bad("BErr sums to %g, want 0", sum(tb.BErr))
		}
		if tb.EmbeddedOrder < 1 {
			return bad("an adaptive tableau needs EmbeddedOrder ≥ 1")
		}
	}
	if tb.CMid != nil {
		if len(tb.CMid) != s {
			return bad("len(CMid) = %d, want %d", len(tb.CMid), s)
		}
		if math.Abs(sum(tb.CMid)-0.5) > tableauTol {
			return bad("CMid sums to %g, want 1/2", sum(tb.CMid))
		}
	}
	if tb.Order < 1 {
		return bad("Order must be ≥ 1")
	}
	out := tb
	out.fsal = s > 1 && tb.C[s-1] == 1 && tb.B[s-1] == 0
	for j := 0; out.fsal && j < s-1; j++ {
		out.fsal = tb.A[s-1][j] == tb.B[j]
	}
	return &out, nil
}

func sum(xs []float64) float64 {
	var total float64
	for _, x := range xs {
		total += x
	}
	return total
}

func mustTableau(tb Tableau) *Tableau {
	out, err := NewTableau(tb)
	if err != nil {
		panic(err) // The built-in tableaux are covered by tests.
	}
	return out
}

func diff(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] - b[i]
	}
	return out
}

// Built-in tableaux.
var (
	// Dopri5Tableau is Dormand–Prince 5(4) (Dormand & Prince 1980, Hairer,
	// Nørsett & Wanner, Solving ODEs I, Table II.5.2), FSAL, with Shampine's
	// (1986) mid-point weights for fourth-order dense output.
	Dopri5Tableau = mustTableau(Tableau{
		Name: string(Dopri5),
		C:    []float64{0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1, 1},
		A: [][]float64{
			{},
			{1.0 / 5},
			{3.0 / 40, 9.0 / 40},
			{44.0 / 45, -56.0 / 15, 32.0 / 9},
			{19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
			{9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
			{35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84},
		},
		B: []float64{35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84, 0},
		BErr: diff(
			[]float64{35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84, 0},
			[]float64{5179.0 / 57600, 0, 7571.0 / 16695, 393.0 / 640, -92097.0 / 339200, 187.0 / 2100, 1.0 / 40}),
		Order:         5,
		EmbeddedOrder: 4,
		CMid: []float64{
			6025192743.0 / 30085553152 / 2, 0, 51252292925.0 / 65400821598 / 2,
			-2691868925.0 / 45128329728 / 2, 187940372067.0 / 1594534317056 / 2,
			-1776094331.0 / 19743644256 / 2, 11237099.0 / 235043384 / 2,
		},
	})

	// Bosh3Tableau is Bogacki–Shampine 3(2) (Bogacki & Shampine 1989), FSAL.
	Bosh3Tableau = mustTableau(Tableau{
		Name: string(Bosh3),
		C:    []float64{0, 1.0 / 2, 3.0 / 4, 1},
		A: [][]float64{
			{},
			{1.0 / 2},
			{0, 3.0 / 4},
			{2.0 / 9, 1.0 / 3, 4.0 / 9},
		},
		B:             []float64{2.0 / 9, 1.0 / 3, 4.0 / 9, 0},
		BErr:          diff([]float64{2.0 / 9, 1.0 / 3, 4.0 / 9, 0}, []float64{7.0 / 24, 1.0 / 4, 1.0 / 3, 1.0 / 8}),
		Order:         3,
		EmbeddedOrder: 2,
	})

	// RK4Tableau is the classical fourth-order Runge–Kutta method.
	RK4Tableau = mustTableau(Tableau{
		Name:  string(RK4),
		C:     []float64{0, 1.0 / 2, 1.0 / 2, 1},
		A:     [][]float64{{}, {1.0 / 2}, {0, 1.0 / 2}, {0, 0, 1}},
		B:     []float64{1.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 6},
		Order: 4,
	})

	// MidpointTableau is the explicit midpoint method (second order).
	MidpointTableau = mustTableau(Tableau{
		Name:  string(Midpoint),
		C:     []float64{0, 1.0 / 2},
		A:     [][]float64{{}, {1.0 / 2}},
		B:     []float64{0, 1},
		Order: 2,
	})

	// EulerTableau is the explicit Euler method (first order).
	EulerTableau = mustTableau(Tableau{
		Name:  string(Euler),
		C:     []float64{0},
		A:     [][]float64{{}},
		B:     []float64{1},
		Order: 1,
	})
)
