package odeint

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/internal/testutil"
)

// mlpField is F(t, y) = tanh(y·W1 + b1)·W2 + b2 with variables in ctx.
func mlpField(dim, hidden int) Func {
	return func(ctx *context.Context, _ *Node, y []*Node) []*Node {
		g := y[0].Graph()
		dt := y[0].DType()
		w1 := ctx.In("mlp").VariableWithShape("w1", shapeOf(dt, dim, hidden)).ValueGraph(g)
		b1 := ctx.In("mlp").VariableWithShape("b1", shapeOf(dt, hidden)).ValueGraph(g)
		w2 := ctx.In("mlp").VariableWithShape("w2", shapeOf(dt, hidden, dim)).ValueGraph(g)
		b2 := ctx.In("mlp").VariableWithShape("b2", shapeOf(dt, dim)).ValueGraph(g)
		h := Tanh(Add(Dot(y[0], w1), InsertAxes(b1, 0)))
		return []*Node{Add(Dot(h, w2), InsertAxes(b2, 0))}
	}
}

func randomBatch(batch, dim int, seed uint64) *tensors.Tensor {
	rng := rand.New(rand.NewPCG(seed, 1))
	vals := make([]float32, batch*dim)
	for i := range vals {
		vals[i] = float32(rng.NormFloat64())
	}
	return tensors.FromFlatDataAndDimensions(vals, batch, dim)
}

// BenchmarkDopri5MLP: dopri5 on an MLP field (batch 128, dim 64, hidden 64,
// tanh, float32), tol 1e-3, t ∈ [0, 1]. Reports time per accepted step, NFE,
// and the host-loop overhead (wall − time inside compiled executions) / wall.
func BenchmarkDopri5MLP(b *testing.B) {
	const batch, dim, hidden = 128, 64, 64
	solver, err := NewSolver(testutil.Backend(), context.New(), mlpField(dim, hidden), tolOpts(Dopri5, 1e-3))
	if err != nil {
		b.Fatal(err)
	}
	defer solver.Finalize()
	y0 := []*tensors.Tensor{randomBatch(batch, dim, 1)}
	ts := []float64{0, 1}
	if _, err := solver.Solve(y0, ts); err != nil { // warm-up: compile
		b.Fatal(err)
	}
	var wall, exec time.Duration
	steps, nfe := 0, 0
	b.ResetTimer()
	for b.Loop() {
		sol, err := solver.Solve(y0, ts)
		if err != nil {
			b.Fatal(err)
		}
		wall += sol.Stats.Wall
		exec += sol.Stats.ExecTime
		steps += sol.Stats.Accepted
		nfe += sol.Stats.NFE
	}
	n := float64(b.N)
	b.ReportMetric(float64(wall.Microseconds())/float64(steps), "µs/step")
	b.ReportMetric(float64(nfe)/n, "NFE")
	b.ReportMetric(float64(steps)/n, "steps")
	b.ReportMetric(100*float64(wall-exec)/float64(wall), "%overhead")
}

func shapeOf(dt dtypes.DType, dims ...int) shapes.Shape { return shapes.Make(dt, dims...) }
