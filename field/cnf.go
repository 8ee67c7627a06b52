package field

import (
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/internal/matmul"
)

// TraceMode selects how a CNF field computes tr(∂F/∂z).
type TraceMode int

const (
	// Hutchinson estimates the trace by εᵀ(∂F/∂z)ε (Hutchinson 1989; FFJORD,
	// Grathwohl et al. 2019) with one probe ε per sample that the caller
	// draws (Rademacher) and passes as the third state tensor, so it stays
	// fixed over a solve, forward and adjoint alike. The estimate is unbiased:
	// E[εᵀJε] = tr J when E[εεᵀ] = I.
	Hutchinson TraceMode = iota
	// ExactTrace sums e_jᵀ(∂F/∂z)e_j over the D basis vectors: D times the
	// Jacobian–vector work of one probe. For validation and small D.
	ExactTrace
)

// String names the mode.
func (m TraceMode) String() string {
	switch m {
	case Hutchinson:
		return "hutchinson"
	case ExactTrace:
		return "exact"
	}
	return fmt.Sprintf("TraceMode(%d)", int(m))
}

// CNF is FFJORD's augmented vector field (Grathwohl et al. 2019): a stack of
// ConcatSquashLinear layers F with the activation Act between them, on the
// state
//
//	(z [B, D], logp [B, 1])              with Trace = ExactTrace
//	(z [B, D], logp [B, 1], ε [B, D])    with Trace = Hutchinson
//
// and dynamics dz/dt = F(t, z), d logp/dt = −tr(∂F/∂z) (estimated as −εᵀ(∂F/∂z)ε
// with Hutchinson), dε/dt = 0.
//
// The Jacobian–probe products (∂F/∂z)ε are carried forward through the layers
// alongside the activations (forward mode: u ← (u·W)⊙gate through a layer,
// u ← u⊙σ'(y) through an activation), so the trace costs one extra matrix
// product per layer and probe. The VJP is hand-written for the whole augmented
// field, the trace term included: its cotangent flows back through σ″ into
// the activations and through both products into W. The VJP of ε is zero (the
// probe is a constant of the solve, not a variable).
//
// SNOpt's Kronecker statistics of each layer are those of its main path:
// A over [layer input, 1], B over the cotangents of h = x·W + b (which carry
// the trace term's contribution through σ″).
type CNF struct {
	// Layers are the ConcatSquashLinear layers, the last with D outputs.
	Layers []*ConcatSquashLinear
	// Act is the activation between layers; it needs Deriv and Deriv2.
	Act *Activation
	// Trace selects the Hutchinson estimate or the exact trace.
	Trace TraceMode
}

var _ Field = (*CNF)(nil)

// cnfForward is the forward pass with the probes' tangents.
type cnfForward struct {
	b, d, probes int
	saved        []*squashSaved
	u            []*Node // tangent entering layer i, [P·B, in_i]; u[0] are the probes
	m            []*Node // u[i]·W_i, [P·B, out_i]
	s            []*Node // tangent of layer i's output, m⊙gate
	y            []*Node // layer outputs (pre-activation), [B, out_i]
	f            *Node   // F(t, z) = y[last]
	trace        *Node   // [B, 1]
}

// tile repeats m [B, n] reps times along the rows: [reps·B, n].
func tile(m *Node, reps int) *Node {
	if reps == 1 {
		return m
	}
	dims := m.Shape().Dimensions
	return Reshape(BroadcastPrefix(m, reps), reps*dims[0], dims[1])
}

func (c *CNF) check(x []*Node) {
	want := 2
	if c.Trace == Hutchinson {
		want = 3
	}
	if len(c.Layers) == 0 || c.Act == nil || c.Act.Deriv2 == nil {
		panic(fmt.Errorf("field: CNF needs layers and an activation with a second derivative"))
	}
	if c.Trace != Hutchinson && c.Trace != ExactTrace {
		panic(fmt.Errorf("field: CNF has an unknown trace mode %d", int(c.Trace)))
	}
	if len(x) != want || x[0].Rank() != 2 || x[1].Rank() != 2 || x[1].Shape().Dimensions[1] != 1 ||
		x[1].Shape().Dimensions[0] != x[0].Shape().Dimensions[0] {
		state := "z [B, D], logp [B, 1]"
		if want == 3 {
			state += ", ε [B, D]"
		}
		panic(fmt.Errorf("field: CNF (%s trace) takes %d state tensors (%s)", c.Trace, want, state))
	}
	if want == 3 && !x[2].Shape().Equal(x[0].Shape()) {
		panic(fmt.Errorf("field: the Hutchinson probe %s must have z's shape %s", x[2].Shape(), x[0].Shape()))
	}
	if out := c.Layers[len(c.Layers)-1].Out; out != x[0].Shape().Dimensions[1] {
		panic(fmt.Errorf("field: CNF's last layer has %d outputs for a %d-dimensional z", out, x[0].Shape().Dimensions[1]))
	}
}

// probes returns the probe vectors stacked probe-major, [P·B, D].
func (c *CNF) probes(x []*Node) (*Node, int) {
	z := x[0]
	b, d := z.Shape().Dimensions[0], z.Shape().Dimensions[1]
	if c.Trace == Hutchinson {
		return x[2], 1
	}
	g := z.Graph()
	sh := shapes.Make(z.DType(), d, 1, d)
	eye := ConvertDType(Equal(Iota(g, sh, 0), Iota(g, sh, 2)), z.DType()) // [D, 1, D]
	return Reshape(BroadcastToDims(eye, d, b, d), d*b, d), d
}

func (c *CNF) forward(ctx *context.Context, t *Node, x []*Node) *cnfForward {
	c.check(x)
	z := x[0]
	fw := &cnfForward{b: z.Shape().Dimensions[0], d: z.Shape().Dimensions[1]}
	u0, p := c.probes(x)
	fw.probes = p
	h, u := z, u0
	last := len(c.Layers) - 1
	for i, l := range c.Layers {
		y, sv := l.Forward(ctx, t, h)
		s := sv.(*squashSaved)
		m := matmul.AB(u, s.w)
		tan := Mul(m, s.gate)
		fw.saved, fw.u, fw.m, fw.s, fw.y = append(fw.saved, s), append(fw.u, u), append(fw.m, m), append(fw.s, tan), append(fw.y, y)
		if i < last {
			h = c.Act.Fn(y)
			u = Mul(tan, tile(c.Act.Deriv(y, h), p))
		}
	}
	fw.f = fw.y[last]
	// Σ_p ε_pᵀ (∂F/∂z) ε_p per sample.
	prod := Reshape(Mul(u0, fw.s[last]), p, fw.b, fw.d)
	fw.trace = Reshape(ReduceSum(prod, 0, 2), fw.b, 1)
	return fw
}

// outputs is (dz/dt, d logp/dt[, dε/dt = 0]).
func (c *CNF) outputs(fw *cnfForward, x []*Node) []*Node {
	out := []*Node{fw.f, Neg(fw.trace)}
	if c.Trace == Hutchinson {
		out = append(out, ZerosLike(x[2]))
	}
	return out
}

// Eval implements Field.
func (c *CNF) Eval(ctx *context.Context, t *Node, x []*Node) []*Node {
	return c.outputs(c.forward(ctx, t, x), x)
}

// VJP implements Field: with L = Σ a_z·F − Σ a_l·tr, it runs back through the
// two coupled sweeps (activations y and tangents s) of the forward pass.
func (c *CNF) VJP(ctx *context.Context, t *Node, x []*Node, v []*Node, req Request) Result {
	fw := c.forward(ctx, t, x)
	k, b, d, p := req.Copies, fw.b, fw.d, fw.probes
	bp := newBackprop(k, b, req)
	tRow := Reshape(t, 1, 1)
	// Cotangents of the last layer's output (K·B rows) and of its tangent
	// (K·P·B rows): ∂L/∂F = a_z and ∂L/∂(Jε) = −a_l·ε.
	gy := Reshape(v[0], k*b, d)
	al := Reshape(Neg(v[1]), k, 1, b, 1)
	gs := Reshape(Mul(al, Reshape(fw.u[0], 1, p, b, d)), k*p*b, d)
	var gz *Node
	for i := len(c.Layers) - 1; i >= 0; i-- {
		l, s := c.Layers[i], fw.saved[i]
		gh := Mul(gy, s.gate)
		gm := Mul(gs, s.gate)
		for cp := range bp.paramCopies() {
			gyk, gsk := bp.rowsOf(gy, cp, b), bp.rowsOf(gs, cp, p*b)
			ghk, gmk := bp.rowsOf(gh, cp, b), bp.rowsOf(gm, cp, p*b)
			bp.addGrad(cp, s.wVar, Add(matTMul(s.x, ghk), matTMul(fw.u[i], gmk)))
			bp.addGrad(cp, s.bVar, ReduceSum(ghk, 0))
			// ∂L/∂gate = Σ_rows gy⊙h + Σ_rows gs⊙m; gate = sigmoid(t·W_g + b_g).
			gGate := Add(ReduceSum(Mul(gyk, s.h), 0), ReduceSum(Mul(gsk, fw.m[i]), 0))
			gPre := Mul(InsertAxes(gGate, 0), Mul(s.gate, OneMinus(s.gate)))
			bp.addGrad(cp, s.gwVar, Mul(tRow, gPre))
			bp.addGrad(cp, s.gbVar, Reshape(gPre, l.Out))
			bp.addGrad(cp, s.hVar, Mul(tRow, InsertAxes(ReduceSum(gyk, 0), 0)))
		}
		if bp.wantStats() {
			bp.addStats(s.wVar, s.bVar, s.xt, gh, 1)
		}
		gx := matMulT(gh, s.w) // [K·B, in]
		gu := matMulT(gm, s.w) // [K·P·B, in]
		if i == 0 {
			gz = gx // the probes are constants
			break
		}
		// Back through x = σ(y), u = s⊙σ'(y) of the layer below.
		yPrev, xPrev := fw.y[i-1], s.x
		in := yPrev.Shape().Dimensions[1]
		d1, d2 := c.Act.Deriv(yPrev, xPrev), c.Act.Deriv2(yPrev, xPrev)
		gs = Mul(gu, tile(d1, k*p))
		// Σ_p gu_p ⊙ s_p ⊙ σ''(y), per copy.
		cross := ReduceSum(Mul(Reshape(gu, k, p, b, in), Reshape(Mul(fw.s[i-1], tile(d2, p)), 1, p, b, in)), 1)
		gy = Add(Mul(gx, tile(d1, k)), Reshape(cross, k*b, in))
	}
	vx := []*Node{Reshape(gz, k, b, d), ZerosLike(v[1])}
	if c.Trace == Hutchinson {
		vx = append(vx, ZerosLike(v[2]))
	}
	return Result{F: c.outputs(fw, x), VX: vx, VTheta: bp.grads, Stats: bp.stats}
}
