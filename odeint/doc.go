// Package odeint solves ordinary differential equations dy/dt = F(t, y) for
// batches of states, with explicit Runge–Kutta methods whose every step is one
// compiled GoMLX graph, while the adaptive accept/reject loop runs in Go.
//
// # API
//
// The vector field builds graph nodes and may read trainable variables from a
// context:
//
//	type Func func(ctx *context.Context, t *graph.Node, y []*graph.Node) []*graph.Node
//
// The state is a tuple of tensors ([]*tensors.Tensor) of one dtype, float32
// or float64, any shapes. One call solves:
//
//	func Solve(backend backends.Backend, ctx *context.Context, f Func,
//		y0 []*tensors.Tensor, ts []float64, opts *Options) (*Solution, error)
//
// and a Solver keeps its compiled graphs for repeated solves (no
// recompilation for new times, step sizes or initial values of the same
// shapes):
//
//	func NewSolver(backend backends.Backend, ctx *context.Context, f Func, opts *Options) (*Solver, error)
//	func (s *Solver) Solve(y0 []*tensors.Tensor, ts []float64) (*Solution, error)
//
// ts holds the output times, strictly increasing or strictly decreasing
// (integration backwards in time), at least two. The Solution has the state at
// every output time (Ys[i][j]: tensor j at Ts[i]) and Stats (vector-field
// evaluations, accepted and rejected steps, time inside compiled executions).
//
// # Methods and options
//
// Options.Method picks dopri5 (default; adaptive, FSAL, fourth-order dense
// output), bosh3 (adaptive, FSAL, cubic Hermite dense output), or the
// fixed-grid rk4, midpoint and euler (Options.Step sets the grid). Each method
// is a Tableau (data); one generic stepper runs them all, and NewTableau
// validates custom ones.
//
// Adaptive step control is the standard Hairer–Wanner controller: the error
// ratio is the norm of err/(ATol + RTol·max(|y0|, |y1|)), a step is accepted
// when it is ≤ 1, and the next step is h·min(10, max(0.9·ratio^(−1/(q+1)),
// 0.2)), never shrinking after an accepted step. The first step comes from
// Hairer's algorithm unless Options.FirstStep is given. The norm is the
// mixed RMS (maximum over state tensors of each tensor's RMS) or one RMS over
// everything; Options.NormExclude makes it a semi-norm that ignores chosen
// state tensors (as the adjoint does for its parameter-gradient accumulator).
//
// Steps never pass the final time; output times in between come from the
// step's interpolant, not from shortening steps.
//
// # Errors
//
// A failed solve returns an *Error wrapping one of ErrInvalidOptions,
// ErrShapeMismatch, ErrNonFinite, ErrStepUnderflow or ErrMaxSteps, with the
// time (and step size) where it happened. Nothing panics.
package odeint
