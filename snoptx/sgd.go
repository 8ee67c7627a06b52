package snoptx

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"

	"github.com/snopt-go/snopt/adjointx"
)

// SGDConfig configures SGD with momentum (GoMLX's SGD has none). Build it
// with SGD() and the setters, then Done.
type SGDConfig struct {
	lr, momentum, weightDecay float64
	scope                     string
}

// SGD returns the default configuration: learning rate 0.1, momentum 0.9, no
// weight decay.
func SGD() *SGDConfig { return &SGDConfig{lr: 0.1, momentum: 0.9, scope: "sgd"} }

// LearningRate sets the learning rate.
func (c *SGDConfig) LearningRate(lr float64) *SGDConfig { c.lr = lr; return c }

// Momentum sets the momentum μ (0 disables it).
func (c *SGDConfig) Momentum(mu float64) *SGDConfig { c.momentum = mu; return c }

// WeightDecay sets γ: γθ is added to the gradient.
func (c *SGDConfig) WeightDecay(gamma float64) *SGDConfig { c.weightDecay = gamma; return c }

// Scope sets the scope of the optimizer's variables (under /snoptx).
func (c *SGDConfig) Scope(name string) *SGDConfig { c.scope = name; return c }

// Done validates the configuration and returns the optimizer.
func (c *SGDConfig) Done() (Optimizer, error) {
	if !(c.lr > 0) || !(c.momentum >= 0 && c.momentum < 1) || !(c.weightDecay >= 0) || !finite(c.lr, c.weightDecay) || c.scope == "" {
		return nil, invalidf("SGD needs lr > 0, 0 ≤ momentum < 1, weight decay ≥ 0 (got %g, %g, %g)",
			c.lr, c.momentum, c.weightDecay)
	}
	return &sgd{cfg: *c}, nil
}

type sgd struct{ cfg SGDConfig }

func (o *sgd) Name() string { return "sgd" }

// NeedsStats implements Optimizer: SGD never needs statistics.
func (o *sgd) NeedsStats(int64) bool { return false }

// Refresh implements Optimizer: SGD ignores statistics.
func (o *sgd) Refresh(*context.Context, []adjointx.LayerFactors, int) error { return nil }

// UpdateGraph implements optimizers.Interface, with autodiff gradients.
func (o *sgd) UpdateGraph(ctx *context.Context, _ *Graph, loss *Node) {
	o.UpdateGraphWithNamedGradients(ctx, namedGradients(ctx, loss))
}

// UpdateGraphWithNamedGradients implements Optimizer.
func (o *sgd) UpdateGraphWithNamedGradients(ctx *context.Context, grads map[string]*Node) {
	for name, g := range grads {
		v := lookup(ctx, name)
		if v == nil {
			panic(invalidf("gradient for unknown variable %s", name))
		}
		dir := withWeightDecay(v, g, o.cfg.weightDecay)
		applyMomentum(ctx, o.cfg.scope, v, dir, o.cfg.lr, o.cfg.momentum)
	}
}

// Clear implements optimizers.Interface: it deletes the momentum buffers.
func (o *sgd) Clear(ctx *context.Context) error {
	return ctx.InAbsPath(context.ScopeSeparator + scopeName + context.ScopeSeparator + o.cfg.scope).DeleteVariablesInScope()
}

// withWeightDecay returns g + γθ.
func withWeightDecay(v *context.Variable, g *Node, gamma float64) *Node {
	if gamma == 0 {
		return g
	}
	return Add(g, MulScalar(v.ValueGraph(g.Graph()), gamma))
}

// applyMomentum is the momentum and learning-rate step shared by SGD and
// SNOpt (PyTorch's convention): buf ← μ·buf + d, θ ← θ − lr·buf.
func applyMomentum(ctx *context.Context, scope string, v *context.Variable, dir *Node, lr, mu float64) {
	g := dir.Graph()
	step := dir
	if mu > 0 {
		buf := stateVar(ctx, scope, v, "momentum", v.Shape().DType, v.Shape().Dimensions...)
		step = Add(MulScalar(buf.ValueGraph(g), mu), dir)
		buf.SetValueGraph(step)
	}
	v.SetValueGraph(Sub(v.ValueGraph(g), MulScalar(step, lr)))
}

// stateVar is an optimizer variable for trainable variable v, zero-initialised,
// at /snoptx/<scope>/<v's scope>/<v's name>_<suffix>.
func stateVar(ctx *context.Context, scope string, v *context.Variable, suffix string, dt dtypes.DType, dims ...int) *context.Variable {
	path := fmt.Sprintf("%s%s%s%s%s", context.ScopeSeparator, scopeName, context.ScopeSeparator, scope, v.Scope())
	return ctx.Checked(false).InAbsPath(path).WithInitializer(initializers.Zero).
		VariableWithShape(v.Name()+"_"+suffix, shapeOf(dt, dims...)).SetTrainable(false)
}
