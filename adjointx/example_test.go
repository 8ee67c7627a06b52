package adjointx_test

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/adjointx"
	"github.com/snopt-go/snopt/backend"
	"github.com/snopt-go/snopt/field"
	"github.com/snopt-go/snopt/odeint"
)

// A two-layer field trained through the adjoint: the loss L = ½‖x(1)‖²
// has dL/dx(1) = x(1); the backward pass returns dL/dθ for every layer,
// dL/dx(0) and dL/dt1, and the Kronecker factors of eq. (13). The gradient
// in x(0) is checked against central differences of the forward solve.
func ExampleBlock() {
	b, err := backend.New()
	if err != nil {
		panic(err)
	}
	ctx := context.New()
	opts := &odeint.Options{RTol: 1e-10, ATol: 1e-10}
	x0 := tensors.FromValue([][]float64{{0.5, -1.0}, {1.5, 0.25}, {-0.75, 0.5}})
	// README:adjointx begin
	// A vector field of layers with hand-written VJPs (time as an extra input).
	f := field.NewSequential(
		&field.Linear{Name: "l0", Out: 16, ConcatTime: true}, field.NewTanh(),
		&field.Linear{Name: "l1", Out: 2, ConcatTime: true})
	blk, err := adjointx.NewBlock(b, ctx.In("ode"), f, &adjointx.Options{Forward: opts})
	if err != nil {
		panic(err)
	}
	tr, err := blk.Forward([]*tensors.Tensor{x0}, []float64{0, 1}) // keeps only x at the given times
	if err != nil {
		panic(err)
	}
	dLdx1 := tr.Final()[0] // L = ½‖x(1)‖²
	// cot[k] = dL/dx(ts[k]) (nil where the loss does not look).
	var stats adjointx.Stats
	g, err := blk.Backward(tr, [][]*tensors.Tensor{nil, {dLdx1}}, &adjointx.BackwardOptions{Stats: &stats})
	if err != nil {
		panic(err)
	}
	// g.Params["/ode/l0/weights"] = dL/dθ, g.X0 = dL/dx(0), g.T1 = dL/dt1;
	// stats.Layers[n].A, .B are the Kronecker factors Ā_n, B̄_n of eq. (13).
	// README:adjointx end

	loss := func(x []float64) float64 {
		tr, err := blk.Forward([]*tensors.Tensor{tensors.FromFlatDataAndDimensions(x, 3, 2)}, []float64{0, 1})
		if err != nil {
			panic(err)
		}
		l := 0.0
		for _, v := range tensors.MustCopyFlatData[float64](tr.Final()[0]) {
			l += v * v / 2
		}
		return l
	}
	x := tensors.MustCopyFlatData[float64](x0)
	worst := 0.0
	for i, gi := range tensors.MustCopyFlatData[float64](g.X0[0]) {
		const h = 1e-6
		xp, xm := append([]float64{}, x...), append([]float64{}, x...)
		xp[i] += h
		xm[i] -= h
		worst = math.Max(worst, math.Abs(gi-(loss(xp)-loss(xm))/(2*h)))
	}
	fmt.Println("dL/dx(0) matches central differences:", worst < 1e-6)
	fmt.Println("gradient of l0's weights:", g.Params["/ode/l0/weights"].Shape())
	for _, l := range stats.Layers {
		fmt.Printf("layer %s: A %v, B %v\n", l.Layer, l.A.Shape().Dimensions, l.B.Shape().Dimensions)
	}
	// Output:
	// dL/dx(0) matches central differences: true
	// gradient of l0's weights: (Float64)[3 16]
	// layer /ode/l1: A [18 18], B [2 2]
	// layer /ode/l0: A [4 4], B [16 16]
}
