package snoptx

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX graph code reads best unqualified.
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/snopt-go/snopt/adjointx"
	"github.com/snopt-go/snopt/internal/hostval"
)

// ErrInvalid reports a bad configuration or a mismatched gradient/statistics set.
var ErrInvalid = errors.New("snoptx: invalid input")

// ErrNonFinite reports a NaN or infinite gradient or statistic. The update
// it would have fed is not applied: parameters and optimizer state are
// left as they were.
var ErrNonFinite = errors.New("snoptx: non-finite value")

// finite reports whether every x is neither NaN nor infinite.
func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// firstNonFinite returns the index of the first NaN or infinite entry of a
// float tensor, or -1.
func firstNonFinite(t *tensors.Tensor) (int, error) {
	vals, err := hostval.Float64s(t)
	if err != nil {
		return 0, err
	}
	for i, v := range vals {
		if !finite(v) {
			return i, nil
		}
	}
	return -1, nil
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Optimizer is an optimizer that also takes gradients computed outside the
// graph (by the adjoint), keyed by variable ScopeAndName.
type Optimizer interface {
	optimizers.Interface
	// Name is a short label ("snopt", "sgd", "adam").
	Name() string
	// UpdateGraphWithNamedGradients builds, in the graph of grads, the update
	// of every variable that has a gradient.
	UpdateGraphWithNamedGradients(ctx *context.Context, grads map[string]*Node)
	// NeedsStats reports whether iteration step (0-based) must collect
	// Kronecker statistics for Refresh.
	NeedsStats(step int64) bool
	// Refresh consumes the statistics of a refresh iteration, on the host,
	// before that iteration's update; batch is the mini-batch size.
	Refresh(ctx *context.Context, stats []adjointx.LayerFactors, batch int) error
}

// scopeName is the root scope of the optimizers' variables.
const scopeName = "snoptx"

// namedGradients maps each trainable variable read by the graph to its
// gradient of loss (autodiff), for UpdateGraph.
func namedGradients(ctx *context.Context, loss *Node) map[string]*Node {
	return positionalGradients(ctx, ctx.BuildTrainableVariablesGradientsGraph(loss))
}

// positionalGradients names gradients given, as GoMLX gives them, in the
// order of the trainable variables the graph reads.
func positionalGradients(ctx *context.Context, grads []*Node) map[string]*Node {
	out := map[string]*Node{}
	if len(grads) == 0 {
		return out
	}
	g := grads[0].Graph()
	i := 0
	for v := range ctx.IterVariables() {
		if v.Trainable && v.InUseByGraph(g) {
			if i < len(grads) {
				out[v.ScopeAndName()] = grads[i]
			}
			i++
		}
	}
	return out
}

// lookup finds a variable by ScopeAndName.
func lookup(ctx *context.Context, name string) *context.Variable {
	scope, base := name[:strings.LastIndex(name, context.ScopeSeparator)], name[strings.LastIndex(name, context.ScopeSeparator)+1:]
	if scope == "" {
		scope = context.RootScope
	}
	return ctx.InspectVariable(scope, base)
}

// Stepper applies an optimizer to gradients computed outside any graph: it
// compiles one update graph (gradients in, variables updated) and keeps the
// iteration count in a context variable (so checkpoints carry it).
type Stepper struct {
	backend backends.Backend
	ctx     *context.Context
	opt     Optimizer
	params  []*context.Variable
	exec    *context.Exec
	scope   string
}

// NewStepper prepares the updates of params (their gradients will be keyed
// by ScopeAndName) with opt.
func NewStepper(backend backends.Backend, ctx *context.Context, opt Optimizer, params []*context.Variable) (*Stepper, error) {
	if backend == nil || ctx == nil || opt == nil || len(params) == 0 {
		return nil, invalidf("backend, context, optimizer and parameters are required")
	}
	ps := slices.Clone(params)
	slices.SortFunc(ps, func(a, b *context.Variable) int { return strings.Compare(a.ScopeAndName(), b.ScopeAndName()) })
	return &Stepper{backend: backend, ctx: ctx.Checked(false), opt: opt, params: ps}, nil
}

// Context returns the context holding the parameters and the optimizer state.
func (s *Stepper) Context() *context.Context { return s.ctx }

// Scope puts the stepper's iteration counter and its optimizer's
// context-relative state (GoMLX's learning-rate variable and global step,
// Adam's moments) under the named scope, so that several steppers — one
// optimizer per part of a model, see Group — share one context without
// sharing a learning rate. Call it before the first Step; "" (the default)
// is the root.
func (s *Stepper) Scope(name string) *Stepper {
	s.scope = name
	return s
}

// Optimizer returns the stepper's optimizer.
func (s *Stepper) Optimizer() Optimizer { return s.opt }

// Params returns the parameters, sorted by ScopeAndName.
func (s *Stepper) Params() []*context.Variable { return s.params }

// stepVar is the iteration counter.
func (s *Stepper) stepVar() *context.Variable {
	path := context.ScopeSeparator + scopeName
	if s.scope != "" {
		path += context.ScopeSeparator + "steppers" + context.ScopeSeparator + s.scope
	}
	return s.ctx.InAbsPath(path).VariableWithValue("iteration", int64(0)).SetTrainable(false)
}

// Iteration returns the number of updates applied so far.
func (s *Stepper) Iteration() int64 {
	return tensors.ToScalar[int64](s.stepVar().MustValue())
}

// NeedsStats reports whether the coming iteration must collect statistics.
func (s *Stepper) NeedsStats() bool { return s.opt.NeedsStats(s.Iteration()) }

// gradients checks and orders the stepper's gradients (see Step).
func (s *Stepper) gradients(grads map[string]*tensors.Tensor) ([]any, error) {
	args := make([]any, len(s.params))
	for i, v := range s.params {
		g, ok := grads[v.ScopeAndName()]
		if !ok || g == nil {
			return nil, invalidf("no gradient for %s", v.ScopeAndName())
		}
		if !g.Shape().Equal(v.Shape()) {
			return nil, invalidf("gradient of %s is %s, the variable %s", v.ScopeAndName(), g.Shape(), v.Shape())
		}
		at, err := firstNonFinite(g)
		if err != nil {
			return nil, invalidf("gradient of %s: %v", v.ScopeAndName(), err)
		}
		if at >= 0 {
			return nil, fmt.Errorf("%w: gradient of %s at flat index %d; update skipped", ErrNonFinite, v.ScopeAndName(), at)
		}
		args[i] = g
	}
	return args, nil
}

// Step applies one update. grads must hold a finite gradient for every
// parameter; stats (nil except on refresh iterations) go to the optimizer's
// Refresh first. A missing or mis-shaped gradient is ErrInvalid; a NaN or
// infinite gradient is ErrNonFinite naming the variable and entry. Either
// way nothing is updated: one NaN would otherwise poison every parameter
// that shares its layer's second moments.
func (s *Stepper) Step(grads map[string]*tensors.Tensor, stats []adjointx.LayerFactors, batch int) error {
	args, err := s.gradients(grads)
	if err != nil {
		return err
	}
	return s.apply(args, stats, batch)
}

// apply runs Refresh (with stats) and the update on gradients already
// checked and ordered by gradients.
func (s *Stepper) apply(args []any, stats []adjointx.LayerFactors, batch int) error {
	if stats != nil {
		if err := s.opt.Refresh(s.ctx, stats, batch); err != nil {
			return err
		}
	}
	if s.exec == nil {
		execCtx := s.ctx
		if s.scope != "" {
			execCtx = s.ctx.InAbsPath(context.ScopeSeparator + s.scope)
		}
		exec, err := context.NewExec(s.backend, execCtx, func(ctx *context.Context, in []*Node) {
			named := make(map[string]*Node, len(in))
			for i, v := range s.params {
				_ = v.ValueGraph(in[i].Graph()) // in use, in creation order for positional optimizers
				named[v.ScopeAndName()] = in[i]
			}
			s.opt.UpdateGraphWithNamedGradients(ctx, named)
			sv := s.stepVar()
			sv.SetValueGraph(AddScalar(sv.ValueGraph(in[0].Graph()), 1))
		})
		if err != nil {
			return err
		}
		s.exec = exec
	}
	if _, err := s.exec.Exec(args...); err != nil {
		return fmt.Errorf("snoptx: update: %w", err)
	}
	return nil
}
