package field

import (
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Autodiff turns any vector field function into a Field whose VJPs come from
// GoMLX reverse-mode autodiff: one gradient per cotangent copy, with respect
// to x and every trainable variable the function reads. It produces no Kronecker
// statistics. On the pure-Go backend it is much slower than a layered field
// with hand-written VJPs; use it for small or unusual fields and as a
// reference in tests.
type Autodiff func(ctx *context.Context, t *Node, x []*Node) []*Node

var _ Field = Autodiff(nil)

// Eval implements Field.
func (f Autodiff) Eval(ctx *context.Context, t *Node, x []*Node) []*Node { return f(ctx, t, x) }

// VJP implements Field.
func (f Autodiff) VJP(ctx *context.Context, t *Node, x []*Node, v []*Node, req Request) Result {
	// Differentiate at the point (t, x) with fixed cotangents: cut whatever
	// t, x and v were computed from. Inside a Runge–Kutta step they depend on
	// earlier stages that read the same parameter nodes; without the cut the
	// reverse pass would add those paths to ∂F/∂θ.
	t = StopGradient(t)
	x = append([]*Node{}, x...)
	for j := range x {
		// A plain node on top of the cut: gradient targets must not be
		// stop-gradient nodes themselves, or the reverse pass skips them.
		x[j] = Identity(StopGradient(x[j]))
	}
	v = append([]*Node{}, v...)
	for j := range v {
		v[j] = StopGradient(v[j])
	}
	out := f(ctx, t, x)
	g := t.Graph()
	var vars []*context.Variable
	var varNodes []*Node
	if req.ParamCopies > 0 {
		for v := range ctx.IterVariables() {
			if v.Trainable && v.InUseByGraph(g) {
				vars = append(vars, v)
				varNodes = append(varNodes, v.ValueGraph(g))
			}
		}
	}
	res := Result{F: out, VX: make([]*Node, len(x)), VTheta: make([]map[string]*Node, req.ParamCopies)}
	perCopy := make([][]*Node, len(x))
	for k := range req.Copies {
		var total *Node
		for j := range out {
			vk := Squeeze(Slice(v[j], AxisElem(k)), 0)
			term := ReduceAllSum(Mul(vk, out[j]))
			if total == nil {
				total = term
			} else {
				total = Add(total, term)
			}
		}
		wrt := x
		if k < req.ParamCopies {
			wrt = append(append([]*Node{}, x...), varNodes...)
		}
		grads := Gradient(total, wrt...)
		for j := range x {
			perCopy[j] = append(perCopy[j], grads[j])
		}
		if k < req.ParamCopies {
			res.VTheta[k] = map[string]*Node{}
			for i, v := range vars {
				res.VTheta[k][v.ScopeAndName()] = grads[len(x)+i]
			}
		}
	}
	for j := range x {
		res.VX[j] = Stack(perCopy[j], 0)
	}
	return res
}
