package field

import (
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// GlobalAvgPool averages [B, H, W, C] over the spatial axes to [B, C] (the
// image classifier's pooling before its linear head).
type GlobalAvgPool struct{}

var _ Layer = GlobalAvgPool{}

// Forward implements Layer.
func (GlobalAvgPool) Forward(_ *context.Context, _ *Node, x *Node) (*Node, any) {
	if x.Rank() != 4 {
		panic(fmt.Errorf("field: GlobalAvgPool takes [batch, height, width, channels], got %s", x.Shape()))
	}
	return ReduceMean(x, 1, 2), x.Shape().Dimensions
}

// Backward implements Layer: the cotangent spread evenly over the pixels.
func (GlobalAvgPool) Backward(_ *Node, saved any, gy *Node, _ *Backprop) *Node {
	d := saved.([]int)
	kb, c := gy.Shape().Dimensions[0], gy.Shape().Dimensions[1]
	spread := DivScalar(gy, float64(d[1]*d[2]))
	return BroadcastToDims(Reshape(spread, kb, 1, 1, c), kb, d[1], d[2], c)
}
