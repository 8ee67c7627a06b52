package odeint

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Stats counts the work of a solve.
type Stats struct {
	// NFE is the number of vector-field evaluations.
	NFE int
	// Accepted and Rejected count the steps taken.
	Accepted, Rejected int
	// ExecTime is the time spent inside compiled executions (including the
	// first call's compilation); Wall is the whole solve.
	ExecTime, Wall time.Duration
	// NextStep is the step size the controller proposed after the last
	// accepted step (adaptive methods; 0 otherwise): a good first step for a
	// following solve of the same problem on an adjacent interval (SolveFrom).
	NextStep float64
}

// Solution holds the state at every requested output time.
type Solution struct {
	// Ts are the output times, as requested.
	Ts []float64
	// Ys[i][j] is state tensor j at Ts[i]. Ys[0] is y0 itself. With
	// Options.DropOutputs only the final state is kept (Ys has one entry).
	Ys [][]*tensors.Tensor
	// Stats counts the work done.
	Stats Stats
}

// Final returns the state at the last output time.
func (s *Solution) Final() []*tensors.Tensor { return s.Ys[len(s.Ys)-1] }

// Solver integrates one vector field with one set of options. It keeps its
// compiled step graphs between calls: solving again with other times, step
// sizes or initial values of the same shapes compiles nothing. A Solver is
// not safe for concurrent use.
type Solver struct {
	backend backends.Backend
	ctx     *context.Context
	opts    *resolved
	st      *stepper
	numArgs int

	stepExec, evalExec, firstExec *context.Exec
	interpExec                    *graph.Exec
}

// NewSolver prepares a solver for F with the given options (nil means
// DefaultOptions). ctx holds F's variables; nil gives F an empty context.
func NewSolver(backend backends.Backend, ctx *context.Context, f Func, opts *Options) (*Solver, error) {
	if backend == nil || f == nil {
		return nil, invalidf(0, "backend and vector field must be non-nil")
	}
	if opts == nil {
		opts = DefaultOptions()
	}
	if ctx == nil {
		ctx = context.New()
	}
	s := &Solver{backend: backend, ctx: ctx, opts: &resolved{Options: *opts}}
	s.st = &stepper{f: f}
	return s, nil
}

// Compilations returns how many graphs the solver has built and compiled
// (one per executable and input shape).
func (s *Solver) Compilations() int { return s.st.builds }

// Finalize frees the compiled executables.
func (s *Solver) Finalize() {
	for _, e := range []*context.Exec{s.stepExec, s.evalExec, s.firstExec} {
		if e != nil {
			e.Finalize()
		}
	}
	if s.interpExec != nil {
		s.interpExec.Finalize()
	}
}

// Solve integrates dy/dt = F(t, y) from y(ts[0]) = y0 and returns the state at
// every time of ts, which must be strictly increasing or strictly decreasing
// (backward integration), with at least two entries.
//
// It is a one-call wrapper: NewSolver, Solver.Solve, Finalize. Keep a Solver to
// avoid recompiling when solving repeatedly.
func Solve(backend backends.Backend, ctx *context.Context, f Func, y0 []*tensors.Tensor, ts []float64,
	opts *Options) (*Solution, error) {
	s, err := NewSolver(backend, ctx, f, opts)
	if err != nil {
		return nil, err
	}
	defer s.Finalize()
	return s.Solve(y0, ts)
}

// setup validates the options against the state and (re)binds the stepper.
func (s *Solver) setup(y0 []*tensors.Tensor, ts []float64) (dtypes.DType, error) {
	t0 := 0.0
	if len(ts) > 0 {
		t0 = ts[0]
	}
	if len(y0) == 0 {
		return 0, invalidf(t0, "empty initial state")
	}
	dt := dtypes.InvalidDType
	for i, y := range y0 {
		if y == nil || !y.Ok() {
			return 0, invalidf(t0, "initial state tensor #%d is nil or finalized", i)
		}
		if i == 0 {
			dt = y.DType()
		} else if y.DType() != dt {
			return 0, &Error{Err: ErrShapeMismatch, T: t0,
				Detail: fmt.Sprintf("state tensor #%d is %s, #0 is %s: all must share one dtype", i, y.DType(), dt)}
		}
	}
	if dt != dtypes.Float32 && dt != dtypes.Float64 {
		return 0, invalidf(t0, "state dtype %s unsupported (want float32 or float64)", dt)
	}
	if len(ts) < 2 {
		return 0, invalidf(t0, "need at least 2 output times, got %d", len(ts))
	}
	dir := math.Copysign(1, ts[1]-ts[0])
	for i, t := range ts {
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return 0, invalidf(t0, "output time #%d is %g", i, t)
		}
		if i > 0 && !(dir*(t-ts[i-1]) > 0) {
			return 0, invalidf(t0, "output times must be strictly monotone: ts[%d]=%g, ts[%d]=%g", i-1, ts[i-1], i, t)
		}
	}
	if s.opts.tableau == nil || s.numArgs != len(y0) {
		r, err := resolve(&s.opts.Options, len(y0))
		if err != nil {
			err.(*Error).T = t0
			return 0, err
		}
		s.opts = r
		s.numArgs = len(y0)
		s.st.tb, s.st.norm, s.st.included = r.tableau, r.Norm, r.included
	}
	return dt, nil
}

// exec runs one compiled executable, turning panics and backend errors into
// an *Error at time t.
func (s *Solver) exec(stats *Stats, t, h float64, run func() ([]*tensors.Tensor, error)) (out []*tensors.Tensor, err error) {
	start := time.Now()
	defer func() {
		stats.ExecTime += time.Since(start)
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
			} else {
				err = fmt.Errorf("%w: the dynamics panicked in a compiled step: %v", ErrInvalidOptions, r)
			}
		}
		if err != nil {
			var oe *Error
			if errors.As(err, &oe) {
				oe.T, oe.H = t, h
				err = oe
			} else {
				err = &Error{Err: err, T: t, H: h}
			}
			out = nil
		}
	}()
	return run()
}

func (s *Solver) execs() {
	if s.stepExec != nil {
		return
	}
	s.stepExec = context.MustNewExec(s.backend, s.ctx, s.st.stepGraph)
	s.evalExec = context.MustNewExec(s.backend, s.ctx, s.st.evalGraph)
	s.firstExec = context.MustNewExec(s.backend, s.ctx, s.st.firstStepGraph)
	s.interpExec = graph.MustNewExec(s.backend, s.st.interpGraph)
	for _, e := range []*context.Exec{s.stepExec, s.evalExec, s.firstExec} {
		e.SetMaxCache(-1)
	}
	s.interpExec.SetMaxCache(-1)
}

// scalar makes a scalar tensor of dtype dt.
func scalar(dt dtypes.DType, v float64) *tensors.Tensor {
	if dt == dtypes.Float32 {
		return tensors.FromScalar(float32(v))
	}
	return tensors.FromScalar(v)
}

func release(ts []*tensors.Tensor) {
	for _, t := range ts {
		if t != nil {
			_ = t.FinalizeAll()
		}
	}
}

func argsOf(parts ...[]*tensors.Tensor) []any {
	var out []any
	for _, p := range parts {
		for _, t := range p {
			out = append(out, t)
		}
	}
	return out
}

// checkValue reads a float64 scalar check output and releases it.
func checkValue(t *tensors.Tensor) float64 {
	v := tensors.ToScalar[float64](t)
	_ = t.FinalizeAll()
	return v
}
