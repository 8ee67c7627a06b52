package snoptx

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/adjointx"
)

// collecting reports whether layers built in g for ctx record statistics:
// in a Segment's statistics graph (the graph parameter graphCollect), or
// while ParamCollectStats is set.
func collecting(ctx *context.Context, g *Graph) bool {
	return context.GetGraphParamOr(rootCtx(ctx), g, graphCollect, false) || context.GetParamOr(ctx, ParamCollectStats, false)
}

// SegmentFunc is a part of a model written with GoMLX and snoptx's layers:
// outputs[0] is what the rest of the model consumes (or, for the part that
// ends in the loss, the scalar batch-mean loss); further outputs are passed
// through (metrics). Gradients flow to inputs[0] only.
type SegmentFunc func(ctx *context.Context, inputs []*Node) (outputs []*Node)

// Segment runs a SegmentFunc outside train.Trainer — its forward pass, and
// its vector–Jacobian product with the parameter gradients and the
// Kronecker factors of its snoptx layers — so that GoMLX layers join a
// model whose other parts compute their own gradients and statistics (an
// ODE block through adjointx) under one Stepper and one SNOpt. Each method
// compiles its graph once per input shapes.
type Segment struct {
	backend backends.Backend
	ctx     *context.Context
	fn      SegmentFunc
	fwd     *context.Exec
	bwd     [2]*context.Exec // without, with statistics
	meta    [2]*segmentMeta
}

// segmentMeta is what a backward graph's outputs are, in order.
type segmentMeta struct {
	params  []string   // gradient outputs, sorted by ScopeAndName
	layers  []recorded // factor outputs: A, B per layer
	extra   int        // pass-through outputs
	hasGrad bool       // a cotangent of inputs[0] follows the parameters
}

// NewSegment prepares fn, with its variables in ctx.
func NewSegment(backend backends.Backend, ctx *context.Context, fn SegmentFunc) (*Segment, error) {
	if backend == nil || ctx == nil || fn == nil {
		return nil, invalidf("a segment needs a backend, a context and a function")
	}
	return &Segment{backend: backend, ctx: ctx.Checked(false), fn: fn}, nil
}

// Forward returns fn's outputs.
func (s *Segment) Forward(inputs ...*tensors.Tensor) ([]*tensors.Tensor, error) {
	if s.fwd == nil {
		exec, err := context.NewExec(s.backend, s.ctx, func(ctx *context.Context, in []*Node) []*Node { return s.fn(ctx, in) })
		if err != nil {
			return nil, err
		}
		s.fwd = exec
	}
	out, err := s.fwd.Exec(anys(inputs)...)
	if err != nil {
		return nil, fmt.Errorf("snoptx: segment forward: %w", err)
	}
	return out, nil
}

// SegmentGrads is what Backward computes.
type SegmentGrads struct {
	// Outputs are fn's outputs (outputs[0] and the pass-through ones).
	Outputs []*tensors.Tensor
	// Params maps each trainable variable fn reads to ⟨cot, ∂outputs[0]/∂θ⟩.
	Params map[string]*tensors.Tensor
	// Input is ⟨cot, ∂outputs[0]/∂inputs[0]⟩ (nil if inputs[0] is not a float tensor).
	Input *tensors.Tensor
	// Stats are the Kronecker factors of fn's snoptx layers (with stats set):
	// Ā the mean of x̃x̃ᵀ, B̄ the mean of g gᵀ with g = batch·(per-sample
	// gradient of the batch-mean loss), as Dense documents.
	Stats []adjointx.LayerFactors
}

// Backward runs fn on inputs and returns its outputs and the VJP with cot
// (a tensor shaped like outputs[0]: dL/d outputs[0]; the scalar 1 when
// outputs[0] is the loss) and, with stats, the factors of its layers.
func (s *Segment) Backward(inputs []*tensors.Tensor, cot *tensors.Tensor, stats bool) (*SegmentGrads, error) {
	if len(inputs) == 0 || cot == nil {
		return nil, invalidf("segment backward needs inputs and a cotangent")
	}
	k := 0
	if stats {
		k = 1
	}
	if s.bwd[k] == nil {
		meta := &segmentMeta{}
		exec, err := context.NewExec(s.backend, s.ctx, func(ctx *context.Context, in []*Node) []*Node {
			return s.backwardGraph(ctx, in, stats, meta)
		})
		if err != nil {
			return nil, err
		}
		s.bwd[k], s.meta[k] = exec, meta
	}
	out, err := s.bwd[k].Exec(append(anys(inputs), cot)...)
	if err != nil {
		return nil, fmt.Errorf("snoptx: segment backward: %w", err)
	}
	m := s.meta[k]
	res := &SegmentGrads{Params: map[string]*tensors.Tensor{}}
	res.Outputs, out = out[:1+m.extra], out[1+m.extra:]
	for i, name := range m.params {
		res.Params[name] = out[i]
	}
	out = out[len(m.params):]
	if m.hasGrad {
		res.Input, out = out[0], out[1:]
	}
	for i, r := range m.layers {
		lf := adjointx.LayerFactors{Layer: r.w.Scope(), Weights: r.w.ScopeAndName(), A: out[2*i], B: out[2*i+1], Locations: r.locations}
		if r.b != nil {
			lf.Bias = r.b.ScopeAndName()
		}
		res.Stats = append(res.Stats, lf)
	}
	return res, nil
}

// backwardGraph builds fn, the VJP of outputs[0] with the cotangent (the
// last input) and, with stats, each recorded layer's factors.
func (s *Segment) backwardGraph(ctx *context.Context, in []*Node, stats bool, meta *segmentMeta) []*Node {
	g := in[0].Graph()
	cot := in[len(in)-1]
	inputs := in[:len(in)-1]
	rootCtx(ctx).SetGraphParam(g, graphCollect, stats)
	outs := s.fn(ctx, inputs)
	var recs []recorded
	if stats {
		recs = takeRecords(ctx, g)
	}
	obj := ReduceAllSum(Mul(outs[0], ConvertDType(cot, outs[0].DType())))
	var vars []*context.Variable
	for v := range ctx.IterVariables() {
		if v.Trainable && v.InUseByGraph(g) {
			vars = append(vars, v)
		}
	}
	slices.SortFunc(vars, func(a, b *context.Variable) int { return strings.Compare(a.ScopeAndName(), b.ScopeAndName()) })
	wrt := make([]*Node, 0, len(vars)+1+len(recs))
	for _, v := range vars {
		wrt = append(wrt, v.ValueGraph(g))
		meta.params = append(meta.params, v.ScopeAndName())
	}
	meta.hasGrad = inputs[0].DType().IsFloat()
	if meta.hasGrad {
		wrt = append(wrt, inputs[0])
	}
	for _, r := range recs {
		wrt = append(wrt, r.out)
	}
	grads := Gradient(obj, wrt...)
	result := append([]*Node{}, outs...)
	meta.extra = len(outs) - 1
	n := len(vars)
	if meta.hasGrad {
		n++
	}
	result = append(result, grads[:n]...)
	for i, r := range recs {
		a, b := factors(r, grads[n+i])
		result = append(result, a, b)
	}
	meta.layers = recs
	return result
}

// factors are Ā = mean x̃x̃ᵀ over the rows and B̄ = (batch/locations)·Σ gy gyᵀ
// of one recorded layer, gy = ∂L/∂y of the batch-mean loss.
func factors(r recorded, gy *Node) (a, b *Node) {
	no := r.w.Shape().Dimensions[1]
	gy = Reshape(gy, -1, no)
	rows := float64(r.batch * r.locations)
	a = DivScalar(DotGeneral(r.in, []int{0}, nil, r.in, []int{0}, nil), rows)
	b = MulScalar(DotGeneral(gy, []int{0}, nil, gy, []int{0}, nil), float64(r.batch)/float64(r.locations))
	return a, b
}

func anys(ts []*tensors.Tensor) []any {
	out := make([]any, len(ts))
	for i, t := range ts {
		out[i] = t
	}
	return out
}
