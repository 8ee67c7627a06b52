package field

import (
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/internal/matmul"
)

// ConcatSquashLinear is FFJORD's time-conditioned dense layer (Grathwohl et
// al. 2019):
//
//	y = (x·W + b) ⊙ sigmoid(t·W_g + b_g) + t·W_b
//
// on inputs [B, in]. Variables "weights" [in, Out], "biases" [Out],
// "gate_weights" [1, Out], "gate_biases" [Out] and "hyper_bias" [1, Out] live
// in ctx.In(Name). SNOpt preconditions the linear map (W, b): A over [x, 1]
// and B over the cotangents of h = x·W + b; time enters through the gate and
// the hyper-bias, whose gradients are plain.
type ConcatSquashLinear struct {
	// Name is the layer's scope under the field's context.
	Name string
	// Out is the number of outputs.
	Out int
}

var _ Layer = (*ConcatSquashLinear)(nil)

type squashSaved struct {
	x, w, h, gate                  *Node
	xt                             *Node // [x, 1]
	wVar, bVar, gwVar, gbVar, hVar *context.Variable
}

// Forward implements Layer.
func (l *ConcatSquashLinear) Forward(ctx *context.Context, t, x *Node) (*Node, any) {
	if x.Rank() != 2 {
		panic(fmt.Errorf("field: ConcatSquashLinear %q takes [batch, features], got %s", l.Name, x.Shape()))
	}
	g := x.Graph()
	in := x.Shape().Dimensions[1]
	scope := ctx.In(l.Name)
	s := &squashSaved{x: x}
	s.wVar = scope.VariableWithShape("weights", shapeLike(x, in, l.Out))
	s.bVar = scope.VariableWithShape("biases", shapeLike(x, l.Out))
	s.gwVar = scope.VariableWithShape("gate_weights", shapeLike(x, 1, l.Out))
	s.gbVar = scope.VariableWithShape("gate_biases", shapeLike(x, l.Out))
	s.hVar = scope.VariableWithShape("hyper_bias", shapeLike(x, 1, l.Out))
	s.w = s.wVar.ValueGraph(g)
	// h = [x, 1]·[W; b]: the bias as one more weight row (cheaper than a
	// broadcast add on the pure-Go backend).
	s.xt = withOnes(x)
	s.h = matmul.AB(s.xt, withBiasRow(s.w, s.bVar.ValueGraph(g)))
	tRow := Reshape(t, 1, 1)
	s.gate = Sigmoid(Add(Mul(tRow, s.gwVar.ValueGraph(g)), InsertAxes(s.gbVar.ValueGraph(g), 0))) // [1, Out]
	y := Add(Mul(s.h, s.gate), Mul(tRow, s.hVar.ValueGraph(g)))
	return y, s
}

// Backward implements Layer.
func (l *ConcatSquashLinear) Backward(t *Node, saved any, gy *Node, bp *Backprop) *Node {
	s := saved.(*squashSaved)
	gh := Mul(gy, s.gate) // the gate is [1, Out]: it broadcasts over all rows
	tRow := Reshape(t, 1, 1)
	bp.addAffineGrads(s.xt, gh, bp.Batch, s.wVar, s.bVar)
	for k := range bp.paramCopies() {
		gyk := bp.rowsOf(gy, k, bp.Batch)
		// ∂y/∂gate = h; ∂gate/∂pre = gate·(1 − gate); pre = t·W_g + b_g.
		gPre := Mul(InsertAxes(ReduceSum(Mul(gyk, s.h), 0), 0), Mul(s.gate, OneMinus(s.gate))) // [1, Out]
		bp.addGrad(k, s.gwVar, Mul(tRow, gPre))
		bp.addGrad(k, s.gbVar, Reshape(gPre, l.Out))
		bp.addGrad(k, s.hVar, Mul(tRow, InsertAxes(ReduceSum(gyk, 0), 0)))
	}
	if bp.wantStats() {
		bp.addStats(s.wVar, s.bVar, s.xt, gh, 1)
	}
	return matMulT(gh, s.w)
}
