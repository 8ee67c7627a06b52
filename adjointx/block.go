package adjointx

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/snopt-go/snopt/field"
	"github.com/snopt-go/snopt/internal/safebackend"
	"github.com/snopt-go/snopt/odeint"
)

// ErrInvalidInput reports a bad argument to Forward or Backward: missing or
// mis-shaped cotangents or curvature vectors, a trajectory from elsewhere.
// Numerical failures come back as odeint errors (errors.Is(err,
// odeint.ErrNonFinite) for a non-finite cotangent, for instance).
var ErrInvalidInput = errors.New("adjointx: invalid input")

// ErrUnsafeBackend reports a backend that would deadlock on the adjoint's
// graphs: GoMLX's pure-Go backend with its parallel op executor (the default
// of GoMLX's backends.New()). The message names the fix: this project's
// backend.New(), or the configuration "go:ops_sequential".
var ErrUnsafeBackend = errors.New("adjointx: backend would deadlock")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
}

// DefaultGridIntervals is the default number of intervals of the statistics
// time grid (about 100 samples, as the paper's code).
const DefaultGridIntervals = 100

// Options configures a Block.
type Options struct {
	// Forward configures the forward solve; nil means odeint.DefaultOptions().
	Forward *odeint.Options
	// Backward configures the backward solve; nil means a copy of Forward.
	// Its NormExclude is replaced by the adjoint's semi-norm (see FullNorm),
	// and its Observer and DropOutputs are the adjoint's own.
	Backward *odeint.Options
	// FullNorm also puts the parameter-gradient accumulators (and the p_i)
	// under error control. By default they are left out (a semi-norm on x, a
	// and the q_i: Kidger et al. 2020), which takes fewer steps.
	FullNorm bool
	// GridIntervals is the number of intervals of the uniform time grid on
	// which Kronecker statistics are sampled (trapezoid rule); 0 means
	// DefaultGridIntervals.
	GridIntervals int
	// StatsBatch, when positive and smaller than the batch, estimates the
	// Kronecker statistics at each grid point from the first StatsBatch
	// samples only (every state tensor must carry the batch on axis 0): A
	// and B are means over samples, so the sub-batch's means estimate them
	// without bias, with the per-sample cotangents rescaled to the whole
	// batch (g = B·(∂F/∂h)ᵀq as before). A refresh then costs about
	// StatsBatch/B of its full-batch price. 0 uses the whole batch.
	StatsBatch int
}

// Block is an ODE block x(t1) = ODESolve(x(t0), t0, t1, F) trained with the
// adjoint method (paper eq. 3–5) augmented with the second-order vectors of
// Prop. 2 (eq. 11). Forward keeps only the states at the requested times;
// Backward re-integrates x backwards, so memory is O(1) in the number of
// solver steps.
//
// A Block is not safe for concurrent use.
//
// The block reads and creates F's variables in ctx with reuse checks off
// (ctx.Checked(false)): variables that exist are reused, missing ones are
// created and initialised on first use.
type Block struct {
	backend backends.Backend
	ctx     *context.Context
	f       field.Field
	opts    Options
	fwd     *odeint.Solver
	plans   map[planKey]*plan
	params  []*context.Variable
	addExec *graph.Exec
	dotExec *context.Exec
}

// NewBlock returns a block for the field f with its variables in ctx.
func NewBlock(backend backends.Backend, ctx *context.Context, f field.Field, opts *Options) (*Block, error) {
	if backend == nil || ctx == nil || f == nil {
		return nil, invalidf("backend, context and field must be non-nil")
	}
	if err := safebackend.Check(backend); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsafeBackend, err)
	}
	b := &Block{backend: backend, ctx: ctx.Checked(false), f: f, plans: map[planKey]*plan{}}
	if opts != nil {
		b.opts = *opts
	}
	if b.opts.Forward == nil {
		b.opts.Forward = odeint.DefaultOptions()
	}
	if b.opts.GridIntervals < 0 {
		return nil, invalidf("GridIntervals = %d, want ≥ 0", b.opts.GridIntervals)
	}
	if b.opts.StatsBatch < 0 {
		return nil, invalidf("StatsBatch = %d, want ≥ 0", b.opts.StatsBatch)
	}
	if b.opts.GridIntervals == 0 {
		b.opts.GridIntervals = DefaultGridIntervals
	}
	fwd, err := odeint.NewSolver(backend, b.ctx, f.Eval, b.opts.Forward)
	if err != nil {
		return nil, err
	}
	b.fwd = fwd
	return b, nil
}

// Finalize frees the compiled executables.
func (b *Block) Finalize() {
	b.fwd.Finalize()
	for _, p := range b.plans {
		p.finalize()
	}
}

// Trajectory is the forward solution at the requested times: all Backward
// needs besides the cotangents.
type Trajectory struct {
	// Ts are the times.
	Ts []float64
	// Xs[i] is the state tuple at Ts[i] (Xs[0] is x0).
	Xs [][]*tensors.Tensor
	// Stats of the forward solve.
	Stats odeint.Stats
	block *Block
}

// Final returns the state at the last time.
func (tr *Trajectory) Final() []*tensors.Tensor { return tr.Xs[len(tr.Xs)-1] }

// Forward solves x from x0 = x(ts[0]) and returns it at every time of ts
// (several observation times for time-series models). Only these states are
// kept: memory is O(len(ts)), independent of the number of solver steps.
func (b *Block) Forward(x0 []*tensors.Tensor, ts []float64) (*Trajectory, error) {
	return b.ForwardFrom(x0, ts, 0)
}

// ForwardFrom is Forward with the solve's first step given (> 0; see
// odeint.Solver.SolveFrom): a model that integrates one segment after
// another passes the previous trajectory's Stats.NextStep.
func (b *Block) ForwardFrom(x0 []*tensors.Tensor, ts []float64, firstStep float64) (*Trajectory, error) {
	sol, err := b.fwd.SolveFrom(x0, ts, firstStep)
	if err != nil {
		return nil, err
	}
	return &Trajectory{Ts: sol.Ts, Xs: sol.Ys, Stats: sol.Stats, block: b}, nil
}

// Params returns the trainable variables the field reads, sorted by
// ScopeAndName: the order of Gradients.Params' keys and of the accumulators.
// They are discovered by building (not running) F once for the state shapes.
func (b *Block) Params(x []*tensors.Tensor) ([]*context.Variable, error) {
	if b.params != nil {
		return b.params, nil
	}
	var params []*context.Variable
	err := tryBuild(func() {
		g := graph.NewGraph(b.backend, "adjointx_params")
		defer g.Finalize()
		t := graph.Parameter(g, "t", shapes.Make(x[0].DType()))
		nodes := make([]*graph.Node, len(x))
		for i, xi := range x {
			nodes[i] = graph.Parameter(g, fmt.Sprintf("x%d", i), xi.Shape())
		}
		b.f.Eval(b.ctx, t, nodes)
		for v := range b.ctx.IterVariables() {
			if v.Trainable && v.InUseByGraph(g) {
				params = append(params, v)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(params, func(a, c *context.Variable) int { return strings.Compare(a.ScopeAndName(), c.ScopeAndName()) })
	b.params = params
	return params, nil
}

// tryBuild runs a graph-building function, turning its panics into errors.
func tryBuild(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = fmt.Errorf("%w: building the field: %w", ErrInvalidInput, e)
			} else {
				err = fmt.Errorf("%w: building the field: %v", ErrInvalidInput, r)
			}
		}
	}()
	fn()
	return nil
}
