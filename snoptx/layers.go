package snoptx

import (
	"fmt"
	"sync"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers/regularizers"
)

// ParamCollectStats is the context parameter that, while true when a
// training graph is built, makes SNOpt's UpdateGraph compute the Kronecker
// factors of the layers built with Dense into context variables. Attach
// sets it for the graphs of refresh steps; a user driving train.Trainer by
// hand may set it too (and call RefreshFromContext after such a step).
const ParamCollectStats = "snopt_collect_stats"

// recorded is one preconditionable layer met while building a graph that
// collects statistics: its variables, its homogeneous inputs [N, in(+1)] and
// pre-activations [N, out] (N = batch × locations).
type recorded struct {
	w, b      *context.Variable
	in, out   *Node
	batch     int
	locations int
}

// records holds, per graph under construction, the layers recorded in it;
// UpdateGraph takes them.
var records = struct {
	sync.Mutex
	m map[*Graph][]recorded
}{m: map[*Graph][]recorded{}}

func record(r recorded) {
	records.Lock()
	defer records.Unlock()
	g := r.in.Graph()
	records.m[g] = append(records.m[g], r)
}

func takeRecords(g *Graph) []recorded {
	records.Lock()
	defer records.Unlock()
	rs := records.m[g]
	delete(records.m, g)
	return rs
}

// dropRecords forgets layers recorded in graphs that never reached
// UpdateGraph (evaluation graphs built while statistics were collected).
func dropRecords() {
	records.Lock()
	defer records.Unlock()
	clear(records.m)
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
	if context.GetParamOr(ctx, ParamCollectStats, false) {
		homog := x2
		if useBias {
			homog = Concatenate([]*Node{x2, Ones(g, shapes.Make(x.DType(), rows, 1))}, 1)
		}
		record(recorded{w: wVar, b: bVar, in: homog, out: y, batch: dims[0], locations: rows / dims[0]})
	}
	return Reshape(y, append(append([]int{}, dims[:len(dims)-1]...), out)...)
}
