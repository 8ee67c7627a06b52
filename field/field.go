// Package field builds the vector fields F(t, x, θ) of Neural ODEs as the
// adjoint method needs them: the value F, vector–Jacobian products for a
// stack of cotangents (the adjoint a and the second-order vectors q_i of the
// SNOpt paper's Prop. 2), parameter cotangents, and — for layers that SNOpt
// preconditions — the per-layer Kronecker statistics of eq. (13).
//
// Layered fields (Sequential of Linear, Conv2D, ConcatSquashLinear and
// activations) carry hand-written VJPs written as matrix products: on the
// pure-Go backend, autodiff through matrix products is ~20× slower than the
// forward pass, and convolutions need patch extraction anyway for K-FAC.
// Any other Func can be wrapped with Autodiff, whose VJPs come from GoMLX's
// reverse-mode autodiff (no statistics).
//
// Cotangent layout: for a state tuple x, v[j] stacks K cotangents of x[j]
// along a new leading axis (shape [K, x[j].shape...]). Copy 0 is the adjoint
// a, whose parameter cotangent aᵀ∂F/∂θ the adjoint accumulates (paper eq. 3);
// copies 1..R are the q_i of Prop. 2.
//
// # How to use it
//
// Build a field from layers, for example
//
//	f := field.NewSequential(&field.Linear{Name: "l0", Out: 16, ConcatTime: true}, field.NewTanh(),
//		&field.Linear{Name: "l1", Out: 2, ConcatTime: true})
//
// and give it to adjointx.NewBlock (see adjointx's ExampleBlock); the block
// calls Eval and VJP. Layers outside an ODE block use the same types through
// Sequential.VJP with a statistics request (zoo's classifier does).
package field

import (
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Field is a vector field with vector–Jacobian products.
type Field interface {
	// Eval builds F(t, x): t is a scalar of the state's dtype, x the state
	// tensors; it returns one derivative per state tensor.
	Eval(ctx *context.Context, t *Node, x []*Node) []*Node
	// VJP builds F(t, x) with the vector–Jacobian products of the stacked
	// cotangents v (v[j]: [K, x[j].shape...]) as Request asks.
	VJP(ctx *context.Context, t *Node, x []*Node, v []*Node, req Request) Result
}

// Request says what a VJP must produce besides F and vᵀ∂F/∂x.
type Request struct {
	// Copies is K, the number of stacked cotangents.
	Copies int
	// ParamCopies asks for v[k]ᵀ∂F/∂θ, k < ParamCopies, for every trainable
	// variable F reads: 1 for the adjoint's gradient (eq. 3), more for the
	// vectors p_i of Prop. 2 (eq. 11).
	ParamCopies int
	// Stats, when set, asks for the Kronecker statistics of every
	// preconditionable layer (layered fields only).
	Stats *StatsRequest
}

// StatsRequest selects the cotangents behind the B factor of eq. (13).
type StatsRequest struct {
	// From and To select copies [From, To) of the cotangent stack as the
	// vectors q_i whose pre-activation cotangents g_i = (∂F/∂h_n)ᵀ q_i form B_n.
	From, To int
	// Scale multiplies every g_i (e.g. 1/√(t1−t0) when q = a/√(t1−t0)).
	Scale float64
}

// LayerStats are one layer's Kronecker statistics at one time (eq. 13):
//
//	A = mean over batch (and locations) of z̃ z̃ᵀ, z̃ = [layer input, 1]
//	B = mean over batch (and locations) of Σ_i g_i g_iᵀ
//
// with per-sample g_i = batch·Scale·(∂F/∂h)ᵀ q_i (the gradient of the
// batch-mean loss scaled by the batch size, as in K-FAC). Locations is the
// number of spatial locations of a convolution (1 for dense layers): K-FAC for
// convolutions (Grosse & Martens 2016) approximates the layer's curvature
// block by Locations·(A ⊗ B).
type LayerStats struct {
	// Layer is the layer's scope; Weights and Bias name its variables
	// (ScopeAndName; Bias is empty without a bias). The bias is the last
	// row of the weight matrix in A's homogeneous coordinate.
	Layer, Weights, Bias string
	// A and B are the layer's Kronecker factors at one time: the mean of the
	// homogeneous inputs' outer products and that of the (scaled) output
	// cotangents'.
	A, B *Node
	// Locations is the spatial locations per sample (1 for dense layers).
	Locations int
}

// Result of a VJP.
type Result struct {
	// F is F(t, x).
	F []*Node
	// VX[j] is [K, x[j].shape...]: copy k holds (v[k]ᵀ ∂F/∂x)_j.
	VX []*Node
	// VTheta[k] maps each trainable variable's ScopeAndName to v[k]ᵀ∂F/∂θ,
	// for k < Request.ParamCopies; variables F does not read are absent.
	VTheta []map[string]*Node
	// Stats are the Kronecker statistics (when Request.Stats).
	Stats []LayerStats
}

// AsFunc adapts a Field's Eval to a plain function of (ctx, t, x), the form
// odeint.Func takes.
func AsFunc(f Field) func(ctx *context.Context, t *Node, x []*Node) []*Node {
	return f.Eval
}
