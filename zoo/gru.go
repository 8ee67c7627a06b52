package zoo

import (
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"

	"github.com/snopt-go/snopt/internal/matmul"
)

// gruCell is a GRU cell (Cho et al. 2014, PyTorch's gate convention) with a
// hand-written VJP: with a_i = x·W_i + b_i and a_h = h·W_h + b_h split into
// the r, z, n thirds,
//
//	r = σ(a_i^r + a_h^r),  z = σ(a_i^z + a_h^z),  n = tanh(a_i^n + r ⊙ a_h^n),
//	h' = (1 − z) ⊙ n + z ⊙ h.
//
// Variables in its scope: "wi" [D, 3H], "wh" [H, 3H], "bi" [3H], "bh" [3H]
// (thirds in the order r, z, n), initialised U(−1/√H, 1/√H) as PyTorch.
type gruCell struct {
	in, hidden int
}

// gruVars reads the cell's variables in g.
type gruVars struct{ wi, wh, bi, bh *Node }

func (c gruCell) vars(ctx *context.Context, g *Graph, dt dtypes.DType) gruVars {
	bound := 1 / math.Sqrt(float64(c.hidden))
	ctx = ctx.Checked(false).WithInitializer(initializers.RandomUniformFn(ctx, -bound, bound))
	get := func(name string, dims ...int) *Node {
		return ctx.VariableWithShape(name, shapes.Make(dt, dims...)).ValueGraph(g)
	}
	h3 := 3 * c.hidden
	return gruVars{wi: get("wi", c.in, h3), wh: get("wh", c.hidden, h3), bi: get("bi", h3), bh: get("bh", h3)}
}

// gates computes the cell's internals for x [B, D] and h [B, H].
func (c gruCell) gates(v gruVars, x, h *Node) (r, z, n, ahn *Node) {
	hh := c.hidden
	ai := Add(matmul.AB(x, v.wi), InsertAxes(v.bi, 0))
	ah := Add(matmul.AB(h, v.wh), InsertAxes(v.bh, 0))
	third := func(a *Node, k int) *Node { return Slice(a, AxisRange(), AxisRange(k*hh, (k+1)*hh)) }
	r = Sigmoid(Add(third(ai, 0), third(ah, 0)))
	z = Sigmoid(Add(third(ai, 1), third(ah, 1)))
	ahn = third(ah, 2)
	n = Tanh(Add(third(ai, 2), Mul(r, ahn)))
	return
}

// forward returns h' for x [B, D] and h [B, H].
func (c gruCell) forward(v gruVars, x, h *Node) *Node {
	_, z, n, _ := c.gates(v, x, h)
	return Add(Mul(OneMinus(z), n), Mul(z, h))
}

// gruGrads are the VJP's outputs.
type gruGrads struct{ h, wi, wh, bi, bh *Node }

// vjp maps gh' = ∂L/∂h' to ∂L/∂h and the parameter cotangents.
func (c gruCell) vjp(v gruVars, x, h, gh1 *Node) gruGrads {
	r, z, n, ahn := c.gates(v, x, h)
	dn := Mul(gh1, OneMinus(z))
	dz := Mul(gh1, Sub(h, n))
	dnPre := Mul(dn, OneMinus(Square(n)))              // ∂/∂(a_i^n + r ⊙ a_h^n)
	drPre := Mul(Mul(dnPre, ahn), Mul(r, OneMinus(r))) // through r = σ(·)
	dzPre := Mul(dz, Mul(z, OneMinus(z)))
	gi := Concatenate([]*Node{drPre, dzPre, dnPre}, 1)
	gh := Concatenate([]*Node{drPre, dzPre, Mul(dnPre, r)}, 1)
	return gruGrads{
		h:  Add(Mul(gh1, z), matmul.ABT(gh, v.wh)),
		wi: matmul.ATB(x, gi), wh: matmul.ATB(h, gh), bi: ReduceSum(gi, 0), bh: ReduceSum(gh, 0),
	}
}
