package field

import (
	"fmt"
	"github.com/snopt-go/snopt/internal/matmul"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Linear is a dense layer h = z·W + b on inputs [B, in], where z is the input,
// or [input, t] when ConcatTime is set (time as an extra feature, as in Chen
// et al. 2018). Variables "weights" [in(+1), Out] and "biases" [Out] live in
// ctx.In(Name). SNOpt preconditions it with A over z̃ = [z, 1] and B over
// the cotangents of h.
type Linear struct {
	Name       string
	Out        int
	ConcatTime bool
	NoBias     bool
}

var _ Layer = (*Linear)(nil)

type linearSaved struct {
	z    *Node
	w    *Node
	wVar *context.Variable
	bVar *context.Variable
	in   int
}

// Forward implements Layer.
func (l *Linear) Forward(ctx *context.Context, t, x *Node) (*Node, any) {
	if x.Rank() != 2 {
		panic(fmt.Errorf("field: Linear %q takes [batch, features], got %s", l.Name, x.Shape()))
	}
	g := x.Graph()
	batch, in := x.Shape().Dimensions[0], x.Shape().Dimensions[1]
	z := x
	if l.ConcatTime {
		z = Concatenate([]*Node{x, timeColumn(t, batch)}, 1)
	}
	scope := ctx.In(l.Name)
	wVar := scope.VariableWithShape("weights", shapeLike(x, z.Shape().Dimensions[1], l.Out))
	w := wVar.ValueGraph(g)
	h := matmul.AB(z, w)
	s := &linearSaved{z: z, w: w, wVar: wVar, in: in}
	if !l.NoBias {
		s.bVar = scope.VariableWithShape("biases", shapeLike(x, l.Out))
		h = Add(h, InsertAxes(s.bVar.ValueGraph(g), 0))
	}
	return h, s
}

// Backward implements Layer: gz = gy·Wᵀ; ∂W = zᵀ·gy₀, ∂b = Σ gy₀.
func (l *Linear) Backward(_ *Node, saved any, gy *Node, bp *Backprop) *Node {
	s := saved.(*linearSaved)
	gz := matMulT(gy, s.w)
	bp.addAffineGrads(s.z, gy, bp.Batch, s.wVar, s.bVar)
	if bp.wantStats() {
		zt := s.z
		if s.bVar != nil {
			zt = withOnes(zt)
		}
		bp.addStats(s.wVar, s.bVar, zt, gy, 1)
	}
	if l.ConcatTime {
		gz = Slice(gz, AxisRange(), AxisRange(0, s.in))
	}
	return gz
}
