package snoptx

import (
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/snopt-go/snopt/adjointx"
)

// Adam returns GoMLX's Adam (β = 0.9, 0.999, ε = 1e-7, GoMLX's default) with the given
// learning rate and weight decay, behind the Optimizer interface so it runs
// on exactly the same gradient pipeline as SNOpt and SGD.
func Adam(lr, weightDecay float64) (Optimizer, error) {
	if !(lr > 0) || !(weightDecay >= 0) || !finite(lr, weightDecay) {
		return nil, invalidf("Adam needs a finite lr > 0 and weight decay ≥ 0 (got %g, %g)", lr, weightDecay)
	}
	cfg := optimizers.Adam().LearningRate(lr).Scope(scopeName + "_adam")
	if weightDecay > 0 {
		cfg = cfg.WeightDecay(weightDecay)
	}
	inner, ok := cfg.Done().(interface {
		optimizers.Interface
		UpdateGraphWithGradients(ctx *context.Context, grads []*Node, lossDType dtypes.DType)
	})
	if !ok {
		return nil, invalidf("GoMLX's Adam lacks UpdateGraphWithGradients")
	}
	return &adam{inner: inner}, nil
}

type adam struct {
	inner interface {
		optimizers.Interface
		UpdateGraphWithGradients(ctx *context.Context, grads []*Node, lossDType dtypes.DType)
	}
}

func (o *adam) Name() string                                                 { return "adam" }
func (o *adam) NeedsStats(int64) bool                                        { return false }
func (o *adam) Refresh(*context.Context, []adjointx.LayerFactors, int) error { return nil }
func (o *adam) UpdateGraph(ctx *context.Context, g *Graph, loss *Node) {
	o.inner.UpdateGraph(ctx, g, loss)
}
func (o *adam) Clear(ctx *context.Context) error { return o.inner.Clear(ctx) }

// UpdateGraphWithGradients implements train.OptimizeWithGradients, so
// train.Trainer.AccumulateGradients works with it (GoMLX's Adam's).
func (o *adam) UpdateGraphWithGradients(ctx *context.Context, grads []*Node, lossDType dtypes.DType) {
	o.inner.UpdateGraphWithGradients(ctx, grads, lossDType)
}

// UpdateGraphWithNamedGradients implements Optimizer. GoMLX's Adam matches
// gradients to the trainable variables the graph reads by position, in the
// context's creation order: the named gradients are laid out that way.
func (o *adam) UpdateGraphWithNamedGradients(ctx *context.Context, grads map[string]*Node) {
	var g *Graph
	for _, n := range grads {
		g = n.Graph()
		break
	}
	var list []*Node
	dt := dtypes.Float32
	for v := range ctx.IterVariables() {
		if !v.Trainable || !v.InUseByGraph(g) {
			continue
		}
		n, ok := grads[v.ScopeAndName()]
		if !ok {
			panic(invalidf("Adam: no gradient for %s, which the update graph reads", v.ScopeAndName()))
		}
		list = append(list, n)
		dt = n.DType()
	}
	o.inner.UpdateGraphWithGradients(ctx, list, dt)
}
