package field

import (
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Sequential is a vector field made of layers applied in order to a single
// state tensor: F(t, x) = L_n(t, … L_1(t, x)). Its VJP runs the layers'
// hand-written backward passes on all cotangent copies at once.
type Sequential struct {
	// Layers are applied in order, each to the previous one's output.
	Layers []Layer
}

var _ Field = (*Sequential)(nil)

// NewSequential returns a Sequential field of the given layers.
func NewSequential(layers ...Layer) *Sequential { return &Sequential{Layers: layers} }

// Eval implements Field.
func (s *Sequential) Eval(ctx *context.Context, t *Node, x []*Node) []*Node {
	s.checkState(x)
	h := x[0]
	for _, l := range s.Layers {
		h, _ = l.Forward(ctx, t, h)
	}
	return []*Node{h}
}

// VJP implements Field.
func (s *Sequential) VJP(ctx *context.Context, t *Node, x []*Node, v []*Node, req Request) Result {
	s.checkState(x)
	h := x[0]
	saved := make([]any, len(s.Layers))
	for i, l := range s.Layers {
		h, saved[i] = l.Forward(ctx, t, h)
	}
	k := req.Copies
	batch := x[0].Shape().Dimensions[0]
	bp := newBackprop(k, batch, req)
	// [K, B, ...] → [K·B, ...] (v has F's shape, which for a vector field is x's)
	dims := append([]int{k * batch}, v[0].Shape().Dimensions[2:]...)
	g := Reshape(v[0], dims...)
	for i := len(s.Layers) - 1; i >= 0; i-- {
		g = s.Layers[i].Backward(t, saved[i], g, bp)
	}
	vx := Reshape(g, append([]int{k}, x[0].Shape().Dimensions...)...)
	return Result{F: []*Node{h}, VX: []*Node{vx}, VTheta: bp.grads, Stats: bp.stats}
}

func (s *Sequential) checkState(x []*Node) {
	if len(x) != 1 {
		panic(fmt.Errorf("field: Sequential takes a single state tensor, got %d", len(x)))
	}
}

// shapeLike is the shape with x's dtype and the given dimensions.
func shapeLike(x *Node, dims ...int) shapes.Shape { return shapes.Make(x.DType(), dims...) }

// timeColumn broadcasts the scalar t to a [n, 1] column.
func timeColumn(t *Node, n int) *Node { return BroadcastToDims(Reshape(t, 1, 1), n, 1) }
