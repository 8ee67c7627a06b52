package snoptx

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"

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

// Context parameters read by SGDConfig.FromContext (besides GoMLX's
// optimizers.ParamLearningRate).
const (
	ParamSGDMomentum    = "sgd_momentum"
	ParamSGDWeightDecay = "sgd_weight_decay"
)

// FromContext takes the hyperparameters set as context parameters, as
// GoMLX's optimizers do: optimizers.ParamLearningRate ("learning_rate"),
// ParamSGDMomentum and ParamSGDWeightDecay; unset ones keep their values.
func (c *SGDConfig) FromContext(ctx *context.Context) *SGDConfig {
	c.lr = context.GetParamOr(ctx, optimizers.ParamLearningRate, c.lr)
	c.momentum = context.GetParamOr(ctx, ParamSGDMomentum, c.momentum)
	c.weightDecay = context.GetParamOr(ctx, ParamSGDWeightDecay, c.weightDecay)
	return c
}

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
	step := newGraphStep(ctx, grads, o.cfg.scope, o.cfg.lr, o.cfg.momentum)
	for name, g := range grads {
		v := lookup(ctx, name)
		if v == nil {
			panic(invalidf("gradient for unknown variable %s", name))
		}
		step.apply(v, withWeightDecay(v, step.clipGradient(g), o.cfg.weightDecay))
	}
}

// UpdateGraphWithGradients implements train.OptimizeWithGradients (GoMLX's
// gradient accumulation): grads follow the trainable variables the graph
// reads, in the context's order.
func (o *sgd) UpdateGraphWithGradients(ctx *context.Context, grads []*Node, _ dtypes.DType) {
	o.UpdateGraphWithNamedGradients(ctx, positionalGradients(ctx, grads))
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

// graphStep is what every variable's update in one update graph shares,
// in GoMLX's conventions: the learning rate is read from GoMLX's
// learning-rate variable (optimizers.LearningRateVar, created with the
// configured rate), so learning-rate schedules drive it; the global step
// advances once per update; context parameters clip steps
// (optimizers.ParamClipStepByValue) and drop NaN updates
// (optimizers.ParamClipNaN).
type graphStep struct {
	ctx   *context.Context
	scope string
	lr    *Node
	mu    float64
}

// newGraphStep starts an update graph for grads.
func newGraphStep(ctx *context.Context, grads map[string]*Node, scope string, lr, mu float64) *graphStep {
	var g *Graph
	dt := dtypes.Float32
	for _, n := range grads {
		g, dt = n.Graph(), n.DType()
		break
	}
	if g == nil {
		return nil
	}
	optimizers.IncrementGlobalStepGraph(ctx, g, dtypes.Int64)
	return &graphStep{ctx: ctx, scope: scope, lr: optimizers.LearningRateVar(ctx, dt, lr).ValueGraph(g), mu: mu}
}

// clipGradient zeroes a gradient with NaNs when ParamClipNaN is set.
func (s *graphStep) clipGradient(g *Node) *Node { return optimizers.ClipNaNsInGradients(s.ctx, g) }

// apply is the momentum and learning-rate step shared by SGD and SNOpt
// (PyTorch's convention): buf ← μ·buf + d, θ ← θ − lr·buf.
func (s *graphStep) apply(v *context.Variable, dir *Node) {
	g := dir.Graph()
	step := dir
	if s.mu > 0 {
		buf := stateVar(s.ctx, s.scope, v, "momentum", v.Shape().DType, v.Shape().Dimensions...)
		step = Add(MulScalar(buf.ValueGraph(g), s.mu), dir)
		buf.SetValueGraph(step)
	}
	delta := optimizers.ClipStepByValue(s.ctx, Mul(step, ConvertDType(s.lr, step.DType())))
	old := v.ValueGraph(g)
	v.SetValueGraph(optimizers.ClipNaNsInUpdates(s.ctx, old, Sub(old, delta)))
}

// stateVar is an optimizer variable for trainable variable v, zero-initialised,
// at /snoptx/<scope>/<v's scope>/<v's name>_<suffix>.
func stateVar(ctx *context.Context, scope string, v *context.Variable, suffix string, dt dtypes.DType, dims ...int) *context.Variable {
	path := fmt.Sprintf("%s%s%s%s%s", context.ScopeSeparator, scopeName, context.ScopeSeparator, scope, v.Scope())
	return ctx.Checked(false).InAbsPath(path).WithInitializer(initializers.Zero).
		VariableWithShape(v.Name()+"_"+suffix, shapeOf(dt, dims...)).SetTrainable(false)
}
