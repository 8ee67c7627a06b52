package adjointx

import (
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/field"
	"github.com/snopt-go/snopt/odeint"
)

// planKey identifies one augmented system: how many q_i it carries and
// whether it integrates the p_i.
type planKey struct {
	r     int
	withP bool
}

// plan is one augmented backward system and its compiled solver. The state
// tuple is laid out as
//
//	[x_0..x_{n-1}, a_0..a_{n-1}, θacc_0..θacc_{P-1}, q_1 (n tensors) … q_R, p_1 (P tensors) … p_R]
//
// with dynamics (backwards in time, eq. 4, 3 and 11):
//
//	dx/dt = F,  da/dt = −aᵀF_x,  dθacc/dt = −aᵀF_θ,  dq_i/dt = −q_iᵀF_x,  dp_i/dt = −q_iᵀF_θ
type plan struct {
	b      *Block
	n, r   int
	withP  bool
	params []*context.Variable
	solver *odeint.Solver
	stats  *statsKernel
	run    *backwardRun // the Backward call in progress (for the observer)
}

func (p *plan) numP() int         { return len(p.params) }
func (p *plan) aIdx(j int) int    { return p.n + j }
func (p *plan) thIdx(k int) int   { return 2*p.n + k }
func (p *plan) qIdx(i, j int) int { return 2*p.n + p.numP() + i*p.n + j }
func (p *plan) pIdx(i, k int) int { return 2*p.n + p.numP() + p.r*p.n + i*p.numP() + k }
func (p *plan) size() int {
	s := 2*p.n + p.numP() + p.r*p.n
	if p.withP {
		s += p.r * p.numP()
	}
	return s
}

func (b *Block) plan(n, r int, withP bool, params []*context.Variable) (*plan, error) {
	key := planKey{r: r, withP: withP}
	if p, ok := b.plans[key]; ok {
		return p, nil
	}
	p := &plan{b: b, n: n, r: r, withP: withP, params: params}
	base := b.opts.Backward
	if base == nil {
		base = b.opts.Forward
	}
	opts := *base
	opts.NormExclude = nil
	if !b.opts.FullNorm {
		for k := range params {
			opts.NormExclude = append(opts.NormExclude, p.thIdx(k))
		}
		if withP {
			for i := range r {
				for k := range params {
					opts.NormExclude = append(opts.NormExclude, p.pIdx(i, k))
				}
			}
		}
	}
	opts.DropOutputs = true
	opts.Observer = p.observe
	solver, err := odeint.NewSolver(b.backend, b.ctx, p.dynamics, &opts)
	if err != nil {
		return nil, err
	}
	p.solver = solver
	b.plans[key] = p
	return p, nil
}

func (p *plan) finalize() { p.solver.Finalize() }

// stack returns, per state tensor j, the cotangent stack [a_j, q_1j, …, q_Rj].
func (p *plan) stack(y []*Node) []*Node {
	v := make([]*Node, p.n)
	for j := range p.n {
		copies := []*Node{y[p.aIdx(j)]}
		for i := range p.r {
			copies = append(copies, y[p.qIdx(i, j)])
		}
		v[j] = Stack(copies, 0)
	}
	return v
}

// pick returns copy k of a stacked [K, ...] tensor.
func pick(x *Node, k int) *Node {
	return Reshape(Slice(x, AxisElem(k)), x.Shape().Dimensions[1:]...)
}

// paramGrad returns grads[v] or zeros when the field does not read v.
func paramGrad(g *Graph, grads map[string]*Node, v *context.Variable) *Node {
	if n, ok := grads[v.ScopeAndName()]; ok {
		return n
	}
	return Zeros(g, v.Shape())
}

// dynamics is the augmented vector field of the backward pass, with every
// vector–Jacobian product in one field.VJP call.
func (p *plan) dynamics(ctx *context.Context, t *Node, y []*Node) []*Node {
	if len(y) != p.size() {
		panic(fmt.Errorf("adjointx: augmented state has %d tensors, want %d", len(y), p.size()))
	}
	g := t.Graph()
	x := y[:p.n]
	paramCopies := 1
	if p.withP {
		paramCopies = 1 + p.r
	}
	res := p.b.f.VJP(ctx, t, x, p.stack(y), field.Request{Copies: 1 + p.r, ParamCopies: paramCopies})
	out := make([]*Node, p.size())
	copy(out, res.F)
	for j := range p.n {
		out[p.aIdx(j)] = Neg(pick(res.VX[j], 0))
		for i := range p.r {
			out[p.qIdx(i, j)] = Neg(pick(res.VX[j], 1+i))
		}
	}
	for k, v := range p.params {
		out[p.thIdx(k)] = Neg(paramGrad(g, res.VTheta[0], v))
		if p.withP {
			for i := range p.r {
				out[p.pIdx(i, k)] = Neg(paramGrad(g, res.VTheta[1+i], v))
			}
		}
	}
	return out
}
