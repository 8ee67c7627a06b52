package odeint_test

import (
	"fmt"
	"math"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/backend"
	"github.com/snopt-go/snopt/odeint"
)

// Solve dy/dt = −k·y for a batch of two states, k a variable in the context,
// and compare with the closed form y(t) = y0·exp(−k t).
func ExampleSolve() {
	// README:odeint begin
	b, err := backend.New() // pure Go unless $GOMLX_BACKEND says otherwise
	if err != nil {
		panic(err)
	}
	// dy/dt = −k·y, with k a trainable variable in the context.
	f := func(ctx *context.Context, t *Node, y []*Node) []*Node {
		k := ctx.In("decay").VariableWithValue("k", 0.5).ValueGraph(t.Graph())
		return []*Node{Neg(Mul(k, y[0]))}
	}
	y0 := tensors.FromValue([][]float64{{1, 2}, {3, 4}}) // a batch of 2 states
	opts := &odeint.Options{Method: odeint.Dopri5, RTol: 1e-8, ATol: 1e-10}
	sol, err := odeint.Solve(b, context.New(), f, []*tensors.Tensor{y0}, []float64{0, 0.5, 1}, opts)
	if err != nil { // an *odeint.Error: ErrNonFinite, ErrStepUnderflow, ErrMaxSteps, ...
		panic(err)
	}
	// sol.Ys[i][0] is y at sol.Ts[i]; sol.Stats has NFE, accepted/rejected steps.
	// README:odeint end
	for i, t := range sol.Ts {
		got := sol.Ys[i][0].Value().([][]float64)
		fmt.Printf("t=%.1f y[0][0]=%.6f exact=%.6f\n", t, got[0][0], math.Exp(-0.5*t))
	}
	// Output:
	// t=0.0 y[0][0]=1.000000 exact=1.000000
	// t=0.5 y[0][0]=0.778801 exact=0.778801
	// t=1.0 y[0][0]=0.606531 exact=0.606531
}
