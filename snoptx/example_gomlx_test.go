package snoptx_test

import (
	"fmt"
	"math/rand/v2"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"

	"github.com/snopt-go/snopt/backend"
	"github.com/snopt-go/snopt/snoptx"
)

// regression yields one fixed batch of a noisy linear map, as fresh tensors.
type regression struct{ x, y [][]float64 }

func (d regression) Name() string { return "regression" }
func (d regression) Reset()       {}
func (d regression) Yield() (any, []*tensors.Tensor, []*tensors.Tensor, error) {
	return nil, []*tensors.Tensor{tensors.FromValue(d.x)}, []*tensors.Tensor{tensors.FromValue(d.y)}, nil
}

func newRegression() regression {
	rng := rand.New(rand.NewPCG(1, 2))
	var d regression
	for range 64 {
		x := []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
		d.x = append(d.x, x)
		d.y = append(d.y, []float64{2*x[0] - x[1] + 0.5*x[2] + 0.01*rng.NormFloat64()})
	}
	return d
}

// SNOpt as a GoMLX optimizer: the model's layers are snoptx.Dense (GoMLX's
// layers.Dense variables, made preconditionable), the optimizer goes to
// train.NewTrainer like any GoMLX optimizer, and one Attach call lets the
// loop refresh the Kronecker eigenbases every RefreshEvery steps.
func ExampleAttach() {
	b, err := backend.New()
	if err != nil {
		panic(err)
	}
	data := newRegression()
	// README:snoptx_gomlx begin
	model := func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		h := Tanh(snoptx.Dense(ctx.In("hidden"), inputs[0], true, 16)) // was layers.Dense(…, true, 16)
		return []*Node{snoptx.Dense(ctx.In("out"), h, true, 1)}
	}
	ctx := context.New()
	_ = ctx.SetRNGStateFromSeed(1)
	opt, err := snoptx.SNOpt().LearningRate(0.05).RefreshEvery(10).Done() // or .FromContext(ctx)
	if err != nil {
		panic(err)
	}
	trainer := train.NewTrainer(b, ctx, model, losses.MeanSquaredError, opt, nil, nil)
	loop := train.NewLoop(trainer)
	if err := snoptx.Attach(loop, opt); err != nil {
		panic(err)
	}
	metrics, err := loop.RunSteps(data, 100)
	if err != nil {
		panic(err)
	}
	// README:snoptx_gomlx end
	// metrics[0] is the last batch's loss (the targets' variance is ≈ 5).
	fmt.Printf("training loss below 0.01: %v\n", tensors.ToScalar[float64](metrics[0]) < 0.01)
	// Output:
	// training loss below 0.01: true
}
