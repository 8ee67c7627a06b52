package field

import (
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/internal/matmul"
)

// Linear is a dense layer h = z·W + b on inputs [B, in], where z is the input,
// or [input, t] when ConcatTime is set (time as an extra feature, as in Chen
// et al. 2018). Variables "weights" [in(+1), Out] and "biases" [Out] live in
// ctx.In(Name). SNOpt preconditions it with A over z̃ = [z, 1] and B over
// the cotangents of h.
type Linear struct {
	// Name is the layer's scope under the field's context.
	Name string
	// Out is the number of outputs.
	Out int
	// ConcatTime appends t to the input.
	ConcatTime bool
	// NoBias drops the bias.
	NoBias bool
}

var _ Layer = (*Linear)(nil)

type linearSaved struct {
	zt   *Node // [B, in(+1)(+1)]: the input, time if concatenated, ones if biased
	w    *Node // [in(+1), Out], without the bias row
	wVar *context.Variable
	bVar *context.Variable
	in   int
}

// Forward implements Layer. The bias enters the matrix product as one more
// row of the weights, against a column of ones: h = [z, 1]·[W; b]. On the
// pure-Go backend that is cheaper than adding a broadcast bias, and the
// homogeneous rows [z, 1] are what SNOpt's A factor needs anyway.
func (l *Linear) Forward(ctx *context.Context, t, x *Node) (*Node, any) {
	if x.Rank() != 2 {
		panic(fmt.Errorf("field: Linear %q takes [batch, features], got %s", l.Name, x.Shape()))
	}
	g := x.Graph()
	batch, in := x.Shape().Dimensions[0], x.Shape().Dimensions[1]
	cols, rows := []*Node{x}, in
	if l.ConcatTime {
		cols, rows = append(cols, timeColumn(t, batch)), in+1
	}
	scope := ctx.In(l.Name)
	wVar := scope.VariableWithShape("weights", shapeLike(x, rows, l.Out))
	w := wVar.ValueGraph(g)
	s := &linearSaved{w: w, wVar: wVar, in: in}
	wt := w
	if !l.NoBias {
		s.bVar = scope.VariableWithShape("biases", shapeLike(x, l.Out))
		cols = append(cols, Ones(g, shapeLike(x, batch, 1)))
		wt = withBiasRow(w, s.bVar.ValueGraph(g))
	}
	s.zt = cols[0]
	if len(cols) > 1 {
		s.zt = Concatenate(cols, 1)
	}
	return matmul.AB(s.zt, wt), s
}

// Backward implements Layer: gz = gy·Wᵀ; [∂W; ∂b] = [z, 1]ᵀ·gy₀.
func (l *Linear) Backward(_ *Node, saved any, gy *Node, bp *Backprop) *Node {
	s := saved.(*linearSaved)
	gz := matMulT(gy, s.w)
	bp.addAffineGrads(s.zt, gy, bp.Batch, s.wVar, s.bVar)
	if bp.wantStats() {
		bp.addStats(s.wVar, s.bVar, s.zt, gy, 1)
	}
	if l.ConcatTime {
		gz = Slice(gz, AxisRange(), AxisRange(0, s.in))
	}
	return gz
}
