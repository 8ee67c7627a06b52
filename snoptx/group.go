package snoptx

import (
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/snopt-go/snopt/adjointx"
	"github.com/snopt-go/snopt/internal/hostval"
)

// Group applies several steppers to one model, each to its own parameters —
// App. A.4's time-series setting: Adam for the GRU and the head, the
// optimizer under comparison for the ODE field. Give each stepper its own
// Scope so their learning rates stay apart. A Group checks every gradient
// before any stepper updates, so a NaN leaves the whole model untouched.
type Group struct {
	steppers []*Stepper
	params   []*context.Variable
}

// NewGroup groups steppers over disjoint parameters of one context.
func NewGroup(steppers ...*Stepper) (*Group, error) {
	if len(steppers) == 0 {
		return nil, invalidf("a group needs steppers")
	}
	g := &Group{steppers: steppers}
	seen := map[string]bool{}
	scopes := map[string]bool{}
	for _, s := range steppers {
		if s == nil {
			return nil, invalidf("nil stepper in a group")
		}
		if s.ctx.Scope() != steppers[0].ctx.Scope() || s.Context() == nil {
			return nil, invalidf("the steppers of a group must share one context")
		}
		if scopes[s.scope] {
			return nil, invalidf("two steppers of a group share the scope %q (and so a learning rate)", s.scope)
		}
		scopes[s.scope] = true
		for _, v := range s.params {
			if seen[v.ScopeAndName()] {
				return nil, invalidf("%s belongs to two steppers", v.ScopeAndName())
			}
			seen[v.ScopeAndName()] = true
			g.params = append(g.params, v)
		}
	}
	slices.SortFunc(g.params, func(a, b *context.Variable) int { return strings.Compare(a.ScopeAndName(), b.ScopeAndName()) })
	return g, nil
}

// Context returns the steppers' context.
func (g *Group) Context() *context.Context { return g.steppers[0].Context() }

// Params returns every stepper's parameters, sorted by ScopeAndName.
func (g *Group) Params() []*context.Variable { return g.params }

// Iteration returns the first stepper's update count (all advance together).
func (g *Group) Iteration() int64 { return g.steppers[0].Iteration() }

// NeedsStats reports whether any stepper's coming iteration needs statistics.
func (g *Group) NeedsStats() bool {
	for _, s := range g.steppers {
		if s.NeedsStats() {
			return true
		}
	}
	return false
}

// Step applies every stepper to its own gradients and to the statistics of
// the layers whose weights it owns (on its refresh iterations).
func (g *Group) Step(grads map[string]*tensors.Tensor, stats []adjointx.LayerFactors, batch int) error {
	args := make([][]any, len(g.steppers))
	for i, s := range g.steppers {
		var err error
		if args[i], err = s.gradients(grads); err != nil {
			return err
		}
	}
	for i, s := range g.steppers {
		var own []adjointx.LayerFactors
		if stats != nil && s.NeedsStats() {
			owned := map[string]bool{}
			for _, v := range s.params {
				owned[v.ScopeAndName()] = true
			}
			own = []adjointx.LayerFactors{}
			for _, st := range stats {
				if owned[st.Weights] {
					own = append(own, st)
				}
			}
		}
		if err := s.apply(args[i], own, batch); err != nil {
			return err
		}
	}
	return nil
}

// ScaleLearningRates multiplies every GoMLX learning-rate variable in ctx
// (each stepper scope's, see Stepper.Scope) by factor — a step of a
// learning-rate decay (App. A.4 decays the baselines' rates on the
// time-series problems). The variables exist once each optimizer has made
// its first update; it returns how many it scaled.
func ScaleLearningRates(ctx *context.Context, factor float64) (int, error) {
	if !(factor > 0) || !finite(factor) {
		return 0, invalidf("learning-rate factor %g (want finite > 0)", factor)
	}
	n := 0
	for v := range ctx.IterVariables() {
		if v.Name() != optimizers.ParamLearningRate || !strings.HasSuffix(v.Scope(), context.ScopeSeparator+optimizers.Scope) {
			continue
		}
		val, err := v.Value()
		if err != nil {
			return n, err
		}
		lr, err := hostval.Float64s(val)
		if err != nil || len(lr) != 1 {
			return n, invalidf("learning rate %s is not a float scalar", v.ScopeAndName())
		}
		if err := v.SetValue(toTensor([]float64{lr[0] * factor}, val.DType())); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
