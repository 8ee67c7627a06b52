// Package adjointx is the backward pass of SNOpt (Liu, Chen & Theodorou,
// NeurIPS 2021): the adjoint sensitivity method for an ODE block (paper
// eq. 3–5), augmented with the second-order vectors q_i of Prop. 2 (eq. 11),
// collecting the per-layer Kronecker factors Ā_n, B̄_n of eq. (13) on a time
// grid (Alg. 1 lines 4–9).
//
// # API
//
//	b, err := adjointx.NewBlock(backend, ctx, f, &adjointx.Options{Forward: opts})
//	tr, err := b.Forward(x0, ts)                  // states at ts only: O(1) memory in solver steps
//	g, err := b.Backward(tr, cot, &adjointx.BackwardOptions{Stats: &stats})
//	// g.Params[name] = dL/dθ, g.X0 = dL/dx(t0), g.T1 = dL/dt_end; stats.Layers = Ā_n, B̄_n
//
// f is a field.Field: a layered field (field.Sequential of Linear, Conv2D,
// ConcatSquashLinear and activations) brings hand-written VJPs and the layer
// statistics; field.Autodiff wraps any function (gradients only).
//
// The backward pass integrates, with odeint, the augmented state
// [x, a, θacc, q_1 … q_R (, p_1 … p_R)] from t_end to t0:
//
//	dx/dt = F,  da/dt = −aᵀF_x,  dθacc/dt = −aᵀF_θ,  dq_i/dt = −q_iᵀF_x,  dp_i/dt = −q_iᵀF_θ
//
// with every vector–Jacobian product in one field.VJP call, and by default a
// semi-norm that leaves θacc (and p_i) out of error control. With several
// observation times the adjoint jumps by dL/dx(t_k) at each of them, and x
// restarts from the forward state there.
//
// # Curvature
//
// GaussNewton (the default, as the paper's experiments): R = 1 with q(t1) =
// Φ_x/√(t1−t0); since q then obeys the adjoint's own ODE, q(t) =
// a(t)/√(t1−t0) and it costs no extra state. Vectors: caller-supplied y_i
// per observation time, integrated as q_i; SoftmaxCrossEntropyFactors and
// GaussianFactors factor the exact Gauss–Newton curvature of common loss
// heads. Reference integrates the full matrix ODEs of Theorem 1 for tiny
// problems.
//
// # Kronecker statistics
//
// With BackwardOptions.Stats set, the observer of the backward solve samples
// the field at the points of a uniform grid over [t0, t_end]
// (Options.GridIntervals intervals, dense output: the solver's steps are not
// shortened) and accumulates Ā_n += w_j·A_n(t_j), B̄_n += w_j·B_n(t_j) with
// trapezoid weights w_j (Σ w_j = |t_end − t0|). A_n and B_n are the field's
// LayerStats: means over the batch (and convolution locations) of z̃ z̃ᵀ and
// Σ_i g_i g_iᵀ with g_i = batch·(∂F/∂h_n)ᵀ q_i. Statistics accumulate across
// Backward calls until Stats.Reset.
package adjointx
