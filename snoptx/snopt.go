package snoptx

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"gonum.org/v1/gonum/mat"

	"github.com/snopt-go/snopt/adjointx"
	"github.com/snopt-go/snopt/internal/hostval"
)

// Defaults of the paper's official code (App. A.4).
const (
	DefaultRefreshEvery = 100
	DefaultDamping      = 0.05
	DefaultAlpha        = 0.75
	DefaultMomentum     = 0.9
)

// SNOptConfig configures SNOpt. Build it with SNOpt() and the setters, then Done.
type SNOptConfig struct {
	lr, momentum, weightDecay, damping, alpha float64
	every                                     int64
	scope                                     string
}

// SNOpt returns the default configuration: learning rate 0.01, momentum
// 0.9, damping ε = 0.05, running-average α = 0.75, refresh every 100
// iterations, no weight decay.
func SNOpt() *SNOptConfig {
	return &SNOptConfig{lr: 0.01, momentum: DefaultMomentum, damping: DefaultDamping, alpha: DefaultAlpha,
		every: DefaultRefreshEvery, scope: "snopt"}
}

// LearningRate sets the learning rate.
func (c *SNOptConfig) LearningRate(lr float64) *SNOptConfig { c.lr = lr; return c }

// Momentum sets the momentum μ applied after preconditioning (0 disables it).
func (c *SNOptConfig) Momentum(mu float64) *SNOptConfig { c.momentum = mu; return c }

// WeightDecay sets γ: γθ is added to the gradient and γ to the curvature
// (§3.2, Remark).
func (c *SNOptConfig) WeightDecay(gamma float64) *SNOptConfig { c.weightDecay = gamma; return c }

// Damping sets the Tikhonov damping ε added to the curvature.
func (c *SNOptConfig) Damping(eps float64) *SNOptConfig { c.damping = eps; return c }

// Alpha sets the running-average factor of EKFAC's second moments.
func (c *SNOptConfig) Alpha(alpha float64) *SNOptConfig { c.alpha = alpha; return c }

// RefreshEvery sets K: statistics are collected and the eigenbases
// recomputed on iterations 0, K, 2K, …
func (c *SNOptConfig) RefreshEvery(k int) *SNOptConfig { c.every = int64(k); return c }

// Scope sets the scope of the optimizer's variables (under /snoptx).
func (c *SNOptConfig) Scope(name string) *SNOptConfig { c.scope = name; return c }

// Context parameters read by SNOptConfig.FromContext (besides GoMLX's
// optimizers.ParamLearningRate).
const (
	ParamSNOptMomentum     = "snopt_momentum"
	ParamSNOptWeightDecay  = "snopt_weight_decay"
	ParamSNOptDamping      = "snopt_damping"
	ParamSNOptAlpha        = "snopt_alpha"
	ParamSNOptRefreshEvery = "snopt_refresh_every"
)

// FromContext takes the hyperparameters set as context parameters, as
// GoMLX's optimizers do: optimizers.ParamLearningRate ("learning_rate") and
// the ParamSNOpt… names; unset ones keep their values.
func (c *SNOptConfig) FromContext(ctx *context.Context) *SNOptConfig {
	c.lr = context.GetParamOr(ctx, optimizers.ParamLearningRate, c.lr)
	c.momentum = context.GetParamOr(ctx, ParamSNOptMomentum, c.momentum)
	c.weightDecay = context.GetParamOr(ctx, ParamSNOptWeightDecay, c.weightDecay)
	c.damping = context.GetParamOr(ctx, ParamSNOptDamping, c.damping)
	c.alpha = context.GetParamOr(ctx, ParamSNOptAlpha, c.alpha)
	c.every = int64(context.GetParamOr(ctx, ParamSNOptRefreshEvery, int(c.every)))
	return c
}

// Done validates the configuration and returns the optimizer.
func (c *SNOptConfig) Done() (Optimizer, error) {
	switch {
	case !(c.lr > 0) || !finite(c.lr):
		return nil, invalidf("SNOpt learning rate %g (want finite > 0)", c.lr)
	case !(c.momentum >= 0 && c.momentum < 1):
		return nil, invalidf("SNOpt momentum %g (want 0 ≤ μ < 1)", c.momentum)
	case !(c.weightDecay >= 0) || !finite(c.weightDecay):
		return nil, invalidf("SNOpt weight decay %g (want finite ≥ 0)", c.weightDecay)
	case !(c.damping > 0) || !finite(c.damping):
		return nil, invalidf("SNOpt damping %g (want finite > 0)", c.damping)
	case !(c.alpha >= 0 && c.alpha <= 1):
		return nil, invalidf("SNOpt alpha %g (want 0 ≤ α ≤ 1)", c.alpha)
	case c.every < 1:
		return nil, invalidf("SNOpt refresh every %d (want ≥ 1)", c.every)
	case c.scope == "" || c.scope == statsScope:
		return nil, invalidf("SNOpt scope %q (want a name other than %q, which holds the layers' statistics)", c.scope, statsScope)
	}
	return &snopt{cfg: *c, blocks: map[string]*block{}}, nil
}

// block is one layer's curvature block: its weight and bias variables and
// the variables holding U_A, U_B and m2.
type block struct {
	layer     string
	w, b      *context.Variable
	locations int
	a, o      int // sizes of A (rows of the homogeneous weight matrix) and B (outputs)
}

type snopt struct {
	cfg    SNOptConfig
	blocks map[string]*block // by weight variable ScopeAndName
	// reported is set once the variables without a block have been listed.
	reported bool
	// attached is set by Attach and RefreshFromContext: something refreshes
	// the curvature; warnedStale once the lack of it has been reported.
	attached, warnedStale bool
}

func (o *snopt) Name() string { return "snopt" }

// NeedsStats implements Optimizer: on refresh iterations.
func (o *snopt) NeedsStats(step int64) bool { return step%o.cfg.every == 0 }

func (o *snopt) stateVar(ctx *context.Context, b *block, suffix string, dims ...int) *context.Variable {
	return stateVar(ctx, o.cfg.scope, b.w, suffix, b.w.Shape().DType, dims...)
}

// Refresh implements Optimizer: eigendecompose each layer's Ā, B̄ (gonum
// EigenSym) and reset m2 = Locations·λ_A λ_Bᵀ. Every layer's factors are
// checked and decomposed before any state changes, so a bad factor (nil,
// mis-shaped, non-finite) leaves the previous eigenbases in place.
func (o *snopt) Refresh(ctx *context.Context, stats []adjointx.LayerFactors, batch int) error {
	if batch < 1 {
		return invalidf("batch size %d", batch)
	}
	ctx = ctx.Checked(false)
	type refreshed struct {
		b          *block
		ua, ub, m2 []float64
	}
	var todo []refreshed
	for _, st := range stats {
		if st.A == nil || st.B == nil {
			return invalidf("layer %s: factor A or B is nil", st.Layer)
		}
		b, err := o.lookupBlock(ctx, st)
		if err != nil {
			return err
		}
		ua, la, err := eigen(st.A)
		if err != nil {
			return fmt.Errorf("snoptx: layer %s, factor A: %w", st.Layer, err)
		}
		ub, lb, err := eigen(st.B)
		if err != nil {
			return fmt.Errorf("snoptx: layer %s, factor B: %w", st.Layer, err)
		}
		m2 := make([]float64, b.a*b.o)
		for i := range b.a {
			for j := range b.o {
				m2[i*b.o+j] = float64(b.locations) * la[i] * lb[j]
			}
		}
		todo = append(todo, refreshed{b, ua, ub, m2})
	}
	for _, r := range todo {
		b := r.b
		if err := o.addBlock(ctx, b); err != nil {
			return err
		}
		dt := b.w.Shape().DType
		for _, set := range []struct {
			suffix string
			vals   []float64
			dims   []int
		}{{"ua", r.ua, []int{b.a, b.a}}, {"ub", r.ub, []int{b.o, b.o}}, {"m2", r.m2, []int{b.a, b.o}}} {
			if err := o.stateVar(ctx, b, set.suffix, set.dims...).SetValue(toTensor(set.vals, dt, set.dims...)); err != nil {
				return err
			}
		}
	}
	bv := ctx.InAbsPath(context.ScopeSeparator+scopeName+context.ScopeSeparator+o.cfg.scope).
		VariableWithValue("batch_size", float64(batch)).SetTrainable(false)
	return bv.SetValue(tensors.FromScalar(float64(batch)))
}

// lookupBlock finds the block of a layer, or describes a new one, and checks
// the factor sizes; addBlock registers a new one.
func (o *snopt) lookupBlock(ctx *context.Context, st adjointx.LayerFactors) (*block, error) {
	b, ok := o.blocks[st.Weights]
	if !ok {
		w := lookup(ctx, st.Weights)
		if w == nil {
			return nil, invalidf("statistics for unknown weights %s", st.Weights)
		}
		b = &block{layer: st.Layer, w: w, locations: max(st.Locations, 1)}
		if st.Bias != "" {
			if b.b = lookup(ctx, st.Bias); b.b == nil {
				return nil, invalidf("statistics for unknown bias %s", st.Bias)
			}
		}
		wd := w.Shape().Dimensions
		if len(wd) != 2 {
			return nil, invalidf("weights %s must be a matrix [in, out], got %s", st.Weights, w.Shape())
		}
		b.a, b.o = wd[0], wd[1]
		if b.b != nil {
			b.a++
		}
	}
	if ad := st.A.Shape().Dimensions; len(ad) != 2 || ad[0] != b.a || ad[1] != b.a {
		return nil, invalidf("factor A of %s is %s, want [%d %d]", st.Layer, st.A.Shape(), b.a, b.a)
	}
	if bd := st.B.Shape().Dimensions; len(bd) != 2 || bd[0] != b.o || bd[1] != b.o {
		return nil, invalidf("factor B of %s is %s, want [%d %d]", st.Layer, st.B.Shape(), b.o, b.o)
	}
	return b, nil
}

func (o *snopt) addBlock(ctx *context.Context, b *block) error {
	if _, ok := o.blocks[b.w.ScopeAndName()]; ok {
		return nil
	}
	o.blocks[b.w.ScopeAndName()] = b
	return o.stateVar(ctx, b, "locations").SetValue(toTensor([]float64{float64(b.locations)}, b.w.Shape().DType))
}

// restoreBlocks rebuilds the block registry from the optimizer's variables
// (after loading a checkpoint into a fresh process): a parameter matrix with
// a "<weights>_ua" state variable (existing or loadable) is a block; when
// U_A has one more row than the weights, the layer's bias is the variable
// "biases" beside its weights (the field package's naming).
func (o *snopt) restoreBlocks(ctx *context.Context, names []string) {
	prefix := context.ScopeSeparator + scopeName + context.ScopeSeparator + o.cfg.scope
	for _, name := range names {
		w := lookup(ctx, name)
		if w == nil || w.Shape().Rank() != 2 {
			continue
		}
		ua := ctx.InspectVariable(prefix+w.Scope(), w.Name()+"_ua")
		if ua == nil {
			continue
		}
		b := &block{layer: w.Scope(), w: w, a: ua.Shape().Dimensions[0], o: w.Shape().Dimensions[1], locations: 1}
		if b.a == w.Shape().Dimensions[0]+1 {
			if b.b = ctx.InspectVariable(w.Scope(), "biases"); b.b == nil {
				continue
			}
		}
		if loc := ctx.InspectVariable(prefix+w.Scope(), w.Name()+"_locations"); loc != nil {
			if t, err := loc.Value(); err == nil {
				b.locations = int(tensors.ToScalar[float64](convertScalar(t)))
			}
		}
		o.blocks[name] = b
	}
}

// UpdateGraph implements optimizers.Interface, with autodiff gradients; the
// layers registered by Refresh are preconditioned, the rest take the
// momentum step. While ParamCollectStats is set, the layers built with Dense
// and Conv2D add their Kronecker factors to accumulators in the context as
// the backward pass is built (see RefreshFromContext).
//
// SNOpt without curvature would silently be SGD with momentum, so a first
// update with no eigenbases (none refreshed, none restored from a
// checkpoint) and no statistics being collected is an error (a panic, as
// graph-building functions report errors; train.Trainer returns it): call
// Attach, or drive ParamCollectStats and RefreshFromContext by hand.
func (o *snopt) UpdateGraph(ctx *context.Context, g *Graph, loss *Node) {
	o.checkAttached(ctx, g)
	o.UpdateGraphWithNamedGradients(ctx, namedGradients(ctx, loss))
}

// UpdateGraphWithGradients implements train.OptimizeWithGradients (GoMLX's
// gradient accumulation): grads follow the trainable variables the graph
// reads, in the context's order. The statistics of every micro-batch were
// accumulated by the layers (see UpdateGraph).
func (o *snopt) UpdateGraphWithGradients(ctx *context.Context, grads []*Node, _ dtypes.DType) {
	if len(grads) > 0 {
		o.checkAttached(ctx, grads[0].Graph())
	}
	o.UpdateGraphWithNamedGradients(ctx, positionalGradients(ctx, grads))
}

// checkAttached panics with ErrInvalid when SNOpt has nothing to
// precondition with and nothing is collecting statistics (see UpdateGraph).
func (o *snopt) checkAttached(ctx *context.Context, g *Graph) {
	markInternal(ctx)
	if len(o.blocks) > 0 || context.GetParamOr(ctx, ParamCollectStats, false) {
		return
	}
	var names []string
	for v := range ctx.IterVariables() {
		if v.Trainable && v.InUseByGraph(g) {
			names = append(names, v.ScopeAndName())
		}
	}
	o.restoreBlocks(ctx, names)
	if len(o.blocks) > 0 {
		if !o.attached && !o.warnedStale {
			o.warnedStale = true
			logf("snoptx: SNOpt resumed %d layers' eigenbases from the checkpoint but nothing refreshes them: "+
				"call snoptx.Attach(loop, opt) after train.NewLoop, or the curvature stays as saved", len(o.blocks))
		}
		return
	}
	panic(invalidf("SNOpt has no curvature to precondition with, and nothing collects any: call snoptx.Attach(loop, opt) " +
		"after train.NewLoop (or, driving train.Trainer yourself, set the context parameter snoptx.ParamCollectStats on " +
		"refresh steps and call snoptx.RefreshFromContext after them), and build the layers with snoptx.Dense or snoptx.Conv2D; " +
		"without it SNOpt would train as plain SGD with momentum"))
}

// markInternal makes every variable under /snoptx non-trainable: the
// optimizers' state, which a checkpoint restores without that mark.
func markInternal(ctx *context.Context) {
	prefix := context.ScopeSeparator + scopeName
	for v := range ctx.IterVariables() {
		if v.Trainable && (v.Scope() == prefix || strings.HasPrefix(v.Scope(), prefix+context.ScopeSeparator)) {
			v.SetTrainable(false)
		}
	}
}

// refreshFromContext refreshes the eigenbases from the factors the layers
// accumulated in the context (see accumulateStats): each layer's sums are
// averaged over the statistics graphs that ran, the batch is the samples
// they saw (all micro-batches of an accumulated step), and the
// accumulators are reset.
func (o *snopt) refreshFromContext(ctx *context.Context) error {
	markInternal(ctx)
	prefix := context.ScopeSeparator + scopeName + context.ScopeSeparator + statsScope
	type layer struct {
		w, bias *context.Variable
		st      statsVars
	}
	var found []layer
	for v := range ctx.IterVariables() {
		if !strings.HasPrefix(v.Scope(), prefix+context.ScopeSeparator) || !strings.HasSuffix(v.Name(), "_factor_a") {
			continue
		}
		wScope := strings.TrimPrefix(v.Scope(), prefix)
		w := ctx.InspectVariable(wScope, strings.TrimSuffix(v.Name(), "_factor_a"))
		if w == nil || w.Shape().Rank() != 2 {
			continue
		}
		na := v.Shape().Dimensions[0]
		l := layer{w: w, st: layerStats(ctx, w, na)}
		if na == w.Shape().Dimensions[0]+1 {
			if l.bias = ctx.InspectVariable(wScope, "biases"); l.bias == nil {
				return invalidf("statistics of %s include a bias, but %s has no variable \"biases\"", w.ScopeAndName(), wScope)
			}
		}
		found = append(found, l)
	}
	slices.SortFunc(found, func(a, b layer) int { return strings.Compare(a.w.ScopeAndName(), b.w.ScopeAndName()) })
	var stats []adjointx.LayerFactors
	samples := 0.0
	for _, l := range found {
		count, err := scalarValue(l.st.count)
		if err != nil || count == 0 {
			continue // not in the model's statistics graph
		}
		n, _ := scalarValue(l.st.samples)
		loc, _ := scalarValue(l.st.locations)
		a, err := l.st.a.Value()
		if err != nil {
			return err
		}
		b, err := l.st.b.Value()
		if err != nil {
			return err
		}
		lf := adjointx.LayerFactors{Layer: l.w.Scope(), Weights: l.w.ScopeAndName(), A: scaleTensor(a, 1/count),
			B: scaleTensor(b, 1/count), Locations: max(int(loc), 1)}
		if l.bias != nil {
			lf.Bias = l.bias.ScopeAndName()
		}
		stats = append(stats, lf)
		samples = max(samples, n)
	}
	if len(stats) == 0 {
		return invalidf("no preconditionable layer in the model: build its layers with snoptx.Dense or snoptx.Conv2D " +
			"(SNOpt would only take the momentum step)")
	}
	if err := o.Refresh(ctx, stats, int(samples)); err != nil {
		return err
	}
	for _, l := range found {
		for _, v := range []*context.Variable{l.st.a, l.st.b, l.st.count, l.st.samples} {
			if err := v.SetValue(tensors.FromShape(v.Shape())); err != nil {
				return err
			}
		}
	}
	return nil
}

// scalarValue reads a scalar variable as float64.
func scalarValue(v *context.Variable) (float64, error) {
	t, err := v.Value()
	if err != nil {
		return 0, err
	}
	vals, err := hostval.Float64s(t)
	if err != nil || len(vals) != 1 {
		return 0, invalidf("%s is not a float scalar", v.ScopeAndName())
	}
	return vals[0], nil
}

// scaleTensor returns s·t for a float tensor.
func scaleTensor(t *tensors.Tensor, s float64) *tensors.Tensor {
	vals, _ := hostval.Float64s(t)
	for i := range vals {
		vals[i] *= s
	}
	return hostval.Tensor(vals, t.DType(), t.Shape().Dimensions...)
}

// uncovered lists the trainable variables outside every curvature block.
func (o *snopt) uncovered(ctx *context.Context) []string {
	covered := map[string]bool{}
	for name, b := range o.blocks {
		covered[name] = true
		if b.b != nil {
			covered[b.b.ScopeAndName()] = true
		}
	}
	var out []string
	for v := range ctx.IterVariables() {
		if v.Trainable && !covered[v.ScopeAndName()] {
			out = append(out, v.ScopeAndName())
		}
	}
	slices.Sort(out)
	return out
}

// UpdateGraphWithNamedGradients implements Optimizer.
func (o *snopt) UpdateGraphWithNamedGradients(ctx *context.Context, grads map[string]*Node) {
	if len(o.blocks) == 0 {
		names := make([]string, 0, len(grads))
		for name := range grads {
			names = append(names, name)
		}
		o.restoreBlocks(ctx, names)
	}
	step := newGraphStep(ctx, grads, o.cfg.scope, o.cfg.lr, o.cfg.momentum)
	grads = maps.Clone(grads)
	for name, g := range grads {
		grads[name] = step.clipGradient(g)
	}
	done := map[string]bool{}
	for name, b := range o.blocks {
		gw, ok := grads[name]
		if !ok {
			continue
		}
		var gb *Node
		if b.b != nil {
			if gb, ok = grads[b.b.ScopeAndName()]; !ok {
				panic(invalidf("gradient of %s without its bias %s", name, b.b.ScopeAndName()))
			}
		}
		dirW, dirB := o.precondition(ctx, b, gw, gb)
		step.apply(b.w, dirW)
		done[name] = true
		if b.b != nil {
			step.apply(b.b, dirB)
			done[b.b.ScopeAndName()] = true
		}
	}
	for name, g := range grads {
		if done[name] {
			continue
		}
		v := lookup(ctx, name)
		if v == nil {
			panic(invalidf("gradient for unknown variable %s", name))
		}
		step.apply(v, withWeightDecay(v, g, o.cfg.weightDecay))
	}
}

// precondition is the EKFAC step of one block (eq. 14 in the eigenbasis).
func (o *snopt) precondition(ctx *context.Context, b *block, gw, gb *Node) (dirW, dirB *Node) {
	g := gw.Graph()
	grad := withWeightDecay(b.w, gw, o.cfg.weightDecay)
	if b.b != nil {
		grad = Concatenate([]*Node{grad, InsertAxes(withWeightDecay(b.b, gb, o.cfg.weightDecay), 0)}, 0)
	}
	ua := o.stateVar(ctx, b, "ua", b.a, b.a).ValueGraph(g)
	ub := o.stateVar(ctx, b, "ub", b.o, b.o).ValueGraph(g)
	m2Var := o.stateVar(ctx, b, "m2", b.a, b.o)
	batch := ConvertDType(ctx.Checked(false).InAbsPath(context.ScopeSeparator+scopeName+context.ScopeSeparator+o.cfg.scope).
		VariableWithValue("batch_size", 1.0).SetTrainable(false).ValueGraph(g), grad.DType())
	rot := Dot(DotGeneral(ua, []int{0}, nil, grad, []int{0}, nil), ub) // U_Aᵀ G U_B
	m2 := Add(MulScalar(m2Var.ValueGraph(g), o.cfg.alpha), Mul(MulScalar(batch, 1-o.cfg.alpha), Square(rot)))
	m2Var.SetValueGraph(m2)
	scaled := Div(rot, AddScalar(m2, o.cfg.damping+o.cfg.weightDecay))
	dir := DotGeneral(Dot(ua, scaled), []int{1}, nil, ub, []int{1}, nil) // U_A P U_Bᵀ
	if b.b == nil {
		return dir, nil
	}
	in := b.a - 1
	return Slice(dir, AxisRange(0, in)), Reshape(Slice(dir, AxisRange(in, b.a)), b.o)
}

// Clear implements optimizers.Interface: it deletes the optimizer's state.
func (o *snopt) Clear(ctx *context.Context) error {
	o.blocks = map[string]*block{}
	return ctx.InAbsPath(context.ScopeSeparator + scopeName + context.ScopeSeparator + o.cfg.scope).DeleteVariablesInScope()
}

// eigen returns the eigenvectors (row-major [n, n], columns are vectors) and
// the eigenvalues (clamped at 0) of a symmetric factor.
func eigen(t *tensors.Tensor) ([]float64, []float64, error) {
	d := t.Shape().Dimensions
	n := d[0]
	vals, err := hostval.Float64s(t)
	if err != nil {
		return nil, nil, invalidf("factor dtype %s", t.DType())
	}
	sym := mat.NewSymDense(n, nil)
	for i := range n {
		for j := i; j < n; j++ {
			v := (vals[i*n+j] + vals[j*n+i]) / 2
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, nil, invalidf("non-finite statistics")
			}
			sym.SetSym(i, j, v)
		}
	}
	var es mat.EigenSym
	if !es.Factorize(sym, true) {
		return nil, nil, fmt.Errorf("%w: the eigendecomposition of a Kronecker factor did not converge", ErrNonFinite)
	}
	var vecs mat.Dense
	es.VectorsTo(&vecs)
	lambda := es.Values(nil)
	for i := range lambda {
		lambda[i] = math.Max(lambda[i], 0)
	}
	return append([]float64{}, vecs.RawMatrix().Data...), lambda, nil
}

func toTensor(vals []float64, dt dtypes.DType, dims ...int) *tensors.Tensor {
	return hostval.Tensor(vals, dt, dims...)
}

func shapeOf(dt dtypes.DType, dims ...int) shapes.Shape { return shapes.Make(dt, dims...) }

// convertScalar returns a float64 scalar tensor with t's value.
func convertScalar(t *tensors.Tensor) *tensors.Tensor {
	switch v := t.Value().(type) {
	case float32:
		return tensors.FromScalar(float64(v))
	case float64:
		return t
	}
	return tensors.FromScalar(0.0)
}
