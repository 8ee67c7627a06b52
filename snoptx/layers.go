package snoptx

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers/regularizers"

	"github.com/snopt-go/snopt/field"
)

// ParamCollectStats is the context parameter that, while true when a
// training graph is built, makes the layers built with Dense and Conv2D add
// their Kronecker factors to accumulators in the context as the backward
// pass is built (every micro-batch under gradient accumulation). Attach
// sets it for the graphs of refresh steps; a user driving train.Trainer by
// hand may set it too, and calls RefreshFromContext after the step.
const ParamCollectStats = "snopt_collect_stats"

// recorded is one preconditionable layer met while building a graph that
// collects statistics: its variables, its homogeneous inputs [N, in(+1)] and
// pre-activations (any shape with N·out elements, out last; N = batch ×
// locations).
type recorded struct {
	w, b      *context.Variable
	in, out   *Node
	batch     int
	locations int
}

// Graph parameters (per graph, in the context's root scope: nothing is
// shared between models, contexts or graphs). A Segment's statistics graph
// sets graphCollect and takes the layers recorded under graphRecords.
const (
	graphCollect = "snoptx_collect_stats"
	graphRecords = "snoptx_recorded_layers"
)

// statsScope is the scope, under /snoptx, of the Kronecker factors that the
// layers accumulate on statistics steps (see accumulateStats).
const statsScope = "stats"

func rootCtx(ctx *context.Context) *context.Context { return ctx.InAbsPath(context.RootScope) }

// record adds r to the layers recorded in its graph (a Segment's).
func record(ctx *context.Context, r recorded) {
	g := r.in.Graph()
	recs := context.GetGraphParamOr[*[]recorded](rootCtx(ctx), g, graphRecords, nil)
	if recs == nil {
		recs = &[]recorded{}
		rootCtx(ctx).SetGraphParam(g, graphRecords, recs)
	}
	*recs = append(*recs, r)
}

// takeRecords returns the layers recorded in g and forgets them.
func takeRecords(ctx *context.Context, g *Graph) []recorded {
	recs := context.GetGraphParamOr[*[]recorded](rootCtx(ctx), g, graphRecords, nil)
	if recs == nil {
		return nil
	}
	out := *recs
	*recs = nil
	return out
}

// statsVars are the accumulators of one layer's statistics: the sums of
// the factors Ā and B̄ over the statistics graphs run since the last
// refresh, how many ran (micro-batches, under gradient accumulation) and
// the samples they saw, and the layer's locations per sample.
type statsVars struct{ a, b, count, samples, locations *context.Variable }

func layerStats(ctx *context.Context, w *context.Variable, na int) statsVars {
	dt, no := w.Shape().DType, w.Shape().Dimensions[1]
	return statsVars{
		a:         stateVar(ctx, statsScope, w, "factor_a", dt, na, na),
		b:         stateVar(ctx, statsScope, w, "factor_b", dt, no, no),
		count:     stateVar(ctx, statsScope, w, "factor_count", dtypes.Float64),
		samples:   stateVar(ctx, statsScope, w, "factor_samples", dtypes.Float64),
		locations: stateVar(ctx, statsScope, w, "locations", dtypes.Float64),
	}
}

// accumulateStats makes y carry r's statistics in a training graph: y
// passes through an identity whose gradient, when the trainer builds the
// backward pass (in UpdateGraph, or in the accumulation graphs of
// train.Trainer.AccumulateGradients, which call no optimizer), adds the
// layer's Ā and B̄ of this batch to its accumulators (factors). Every
// micro-batch of an accumulated step thus contributes, as its gradient
// does; RefreshFromContext averages them. No second backward pass is built.
func accumulateStats(ctx *context.Context, r recorded, y *Node) *Node {
	ctx = ctx.Checked(false)
	fired := false
	return IdentityWithCustomGradient(y, func(_, v *Node) *Node {
		if fired { // a second Gradient call in the same graph: counted once
			return v
		}
		fired = true
		g := v.Graph()
		st := layerStats(ctx, r.w, r.in.Shape().Dimensions[1])
		a, b := factors(r, v)
		dt := r.w.Shape().DType
		st.a.SetValueGraph(Add(st.a.ValueGraph(g), ConvertDType(a, dt)))
		st.b.SetValueGraph(Add(st.b.ValueGraph(g), ConvertDType(b, dt)))
		st.count.SetValueGraph(AddScalar(st.count.ValueGraph(g), 1))
		st.samples.SetValueGraph(AddScalar(st.samples.ValueGraph(g), float64(r.batch)))
		st.locations.SetValueGraph(Scalar(g, dtypes.Float64, float64(r.locations)))
		return v
	})
}

// statsLayer routes a layer's recorded inputs and output: into the
// Segment's list in a Segment's statistics graph, else through
// accumulateStats in a training graph built while ParamCollectStats is set;
// other graphs (evaluation, inference) are untouched. It returns the
// layer's output.
func statsLayer(ctx *context.Context, r recorded, y *Node) *Node {
	g := y.Graph()
	if context.GetGraphParamOr(rootCtx(ctx), g, graphCollect, false) {
		record(ctx, r)
		return y
	}
	if context.GetParamOr(ctx, ParamCollectStats, false) && ctx.IsTraining(g) {
		return accumulateStats(ctx, r, y)
	}
	return y
}

// Dense is GoMLX's layers.Dense made preconditionable: y = x·W + b for x
// [batch…, in], with the same variables (ctx.In("dense"): "weights" [in,
// out], "biases" [out], the context's initializer and regularizer), so a
// model switches by changing the call. While ParamCollectStats is set it
// records x and y, from which SNOpt's UpdateGraph computes the layer's
// Kronecker factors: Ā = mean of x̃x̃ᵀ (x̃ = [x, 1] with a bias) and B̄ =
// mean of g gᵀ over the rows, g = batch·∂L/∂y the per-sample gradients of a
// batch-mean loss (eq. 13 outside an ODE block, i.e. K-FAC). Leading
// dimensions beyond the batch count as locations sharing the weights.
//
// This is a graph-building function: it panics on bad shapes, as GoMLX's
// layers do.
func Dense(ctx *context.Context, x *Node, useBias bool, out int) *Node {
	g := x.Graph()
	ctx = ctx.In("dense")
	dims := x.Shape().Dimensions
	if len(dims) < 2 || out < 1 {
		panic(fmt.Sprintf("snoptx.Dense: input [batch…, features] and output ≥ 1 needed, got %s and %d", x.Shape(), out))
	}
	in := dims[len(dims)-1]
	rows := x.Shape().Size() / in
	wVar := ctx.VariableWithShape("weights", shapes.Make(x.DType(), in, out))
	if reg := regularizers.FromContext(ctx); reg != nil {
		reg(ctx, g, wVar)
	}
	x2 := Reshape(x, rows, in)
	y := Dot(x2, wVar.ValueGraph(g))
	var bVar *context.Variable
	if useBias {
		bVar = ctx.VariableWithShape("biases", shapes.Make(x.DType(), out))
		y = Add(y, InsertAxes(bVar.ValueGraph(g), 0))
	}
	if collecting(ctx, g) {
		homog := x2
		if useBias {
			homog = Concatenate([]*Node{x2, Ones(g, shapes.Make(x.DType(), rows, 1))}, 1)
		}
		y = statsLayer(ctx, recorded{w: wVar, b: bVar, in: homog, out: y, batch: dims[0], locations: rows / dims[0]}, y)
	}
	return Reshape(y, append(append([]int{}, dims[:len(dims)-1]...), out)...)
}

// Conv2D is a preconditionable 2-D convolution for GoMLX models, on
// channels-last inputs [B, H, W, C]: Out filters of Kernel×Kernel, the
// given stride and zero padding on each side, computed as patch extraction
// and a matrix product (field.Conv2D, the form K-FAC for convolutions needs;
// Grosse & Martens 2016). Its variables live in ctx.In("conv"): "weights"
// [Kernel·Kernel·C, Out] (rows ordered (di, dj, c); not GoMLX's
// [K, K, C, Out] layout) and "biases" [Out]. While ParamCollectStats is set
// it records the patches and the output for SNOpt's statistics: Ā is the
// mean over samples and output pixels of the homogeneous patches' outer
// products, B̄ that of the per-sample output gradients divided by the
// pixels per sample (field's convention).
func Conv2D(ctx *context.Context, x *Node, out, kernel, stride, padding int, useBias bool) *Node {
	if x.Rank() != 4 || out < 1 || kernel < 1 || stride < 1 || padding < 0 {
		panic(fmt.Sprintf("snoptx.Conv2D: input [B, H, W, C], out, kernel, stride ≥ 1 and padding ≥ 0 needed, got %s, %d, %d, %d, %d",
			x.Shape(), out, kernel, stride, padding))
	}
	layer := &field.Conv2D{Name: "conv", Out: out, Kernel: kernel, Stride: stride, Padding: padding, NoBias: !useBias,
		AutodiffSafe: true} // GoMLX's autodiff differentiates it
	y, saved := layer.Forward(ctx, nil, x)
	if collecting(ctx, x.Graph()) {
		zt, w, b, locations, _ := field.AffineInputs(saved)
		y = statsLayer(ctx, recorded{w: w, b: b, in: zt, out: y, batch: x.Shape().Dimensions[0], locations: locations}, y)
	}
	return y
}
