package odeint

import (
	"fmt"
	"math"
	"time"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// integration is the host-side state of one Solve call: where the outputs
// go, and which tensors are owned by whom (so intermediate states are freed
// as soon as they are no longer needed: memory stays O(1) in the steps).
type integration struct {
	s     *Solver
	dt    dtypes.DType
	ts    []float64
	dir   float64
	n     int
	sol   *Solution
	next  int                      // index of the next output time
	kept  map[*tensors.Tensor]bool // tensors stored in sol.Ys
	user  map[*tensors.Tensor]bool // the caller's y0: never freed here
	stats *Stats
	// firstStep overrides the first adaptive step (SolveFrom); 0: none.
	firstStep float64
}

// Solve integrates from y(ts[0]) = y0 and returns the state at every time of
// ts. See the package documentation for the options and the errors.
func (s *Solver) Solve(y0 []*tensors.Tensor, ts []float64) (sol *Solution, err error) {
	return s.SolveFrom(y0, ts, 0)
}

// SolveFrom is Solve with firstStep (> 0) as the first adaptive step in
// place of Options.FirstStep or the automatic selection — typically the
// previous solve's Stats.NextStep when a model integrates one interval
// after another (an ODE-RNN's segments), which saves the selection's two
// evaluations and the steps it would take to grow back. 0 means Solve's
// choice; fixed-grid methods ignore it.
func (s *Solver) SolveFrom(y0 []*tensors.Tensor, ts []float64, firstStep float64) (sol *Solution, err error) {
	if firstStep < 0 || math.IsNaN(firstStep) || math.IsInf(firstStep, 0) {
		return nil, invalidf(0, "first step %g, want a finite value ≥ 0", firstStep)
	}
	start := time.Now()
	dt, err := s.setup(y0, ts)
	if err != nil {
		return nil, err
	}
	s.execs()
	sol = &Solution{Ts: ts}
	in := &integration{s: s, dt: dt, ts: ts, dir: math.Copysign(1, ts[1]-ts[0]), n: len(y0), sol: sol, firstStep: firstStep,
		kept: map[*tensors.Tensor]bool{}, user: map[*tensors.Tensor]bool{}, stats: &sol.Stats}
	for _, y := range y0 {
		in.user[y] = true
	}
	defer func() {
		sol.Stats.Wall = time.Since(start)
		if err != nil {
			for t := range in.kept {
				if !in.user[t] {
					_ = t.FinalizeAll()
				}
			}
			sol = nil
		}
	}()
	if err = in.emit(y0, false); err != nil {
		return
	}
	if s.opts.tableau.Adaptive() {
		err = in.adaptive(y0)
	} else {
		err = in.fixed(y0)
	}
	return
}

// emit hands the state at ts[next] to the observer and the solution. owned
// marks a tensor made only for this output (dense output), freed if dropped.
func (in *integration) emit(y []*tensors.Tensor, owned bool) error {
	idx := in.next
	in.next++
	t := in.ts[idx]
	if obs := in.s.opts.Observer; obs != nil {
		if err := obs(idx, t, y); err != nil {
			if owned {
				release(y)
			}
			return &Error{Err: err, T: t, Detail: fmt.Sprintf("observer failed at output #%d", idx)}
		}
	}
	if in.s.opts.DropOutputs && idx != len(in.ts)-1 {
		if owned {
			release(y)
		}
		return nil
	}
	in.sol.Ys = append(in.sol.Ys, y)
	for _, x := range y {
		in.kept[x] = true
	}
	return nil
}

// drop frees state tensors that are neither the caller's nor in the solution.
func (in *integration) drop(ys []*tensors.Tensor) {
	for _, y := range ys {
		if !in.kept[y] && !in.user[y] {
			_ = y.FinalizeAll()
		}
	}
}

// step runs the compiled RK step from (t, y, f) with step h and returns its
// outputs: y1, f1, y_mid (possibly empty) and the check value.
func (in *integration) step(t, h float64, tol [2]*tensors.Tensor, y, f []*tensors.Tensor) (
	y1, f1, ymid []*tensors.Tensor, check float64, err error) {
	s := in.s
	args := append([]any{scalar(in.dt, t), scalar(in.dt, h), tol[0], tol[1]}, argsOf(y, f)...)
	out, err := s.exec(in.stats, t, h, func() ([]*tensors.Tensor, error) { return s.stepExec.Exec(args...) })
	if err != nil {
		return nil, nil, nil, 0, err
	}
	in.stats.NFE += s.opts.tableau.EvalsPerStep()
	n := in.n
	y1, f1, ymid = out[:n], out[n:2*n], out[2*n:len(out)-1]
	return y1, f1, ymid, checkValue(out[len(out)-1]), nil
}

// adaptive is the accept/reject loop of embedded methods. Steps never pass
// the final time; outputs in between come from dense output.
func (in *integration) adaptive(y []*tensors.Tensor) error {
	s, o := in.s, in.s.opts
	n, dir := in.n, in.dir
	t, tEnd := in.ts[0], in.ts[len(in.ts)-1]
	tol := [2]*tensors.Tensor{scalar(in.dt, o.RTol), scalar(in.dt, o.ATol)}
	var f []*tensors.Tensor
	var hAbs, check float64
	if first := max(in.firstStep, 0); first > 0 || o.FirstStep > 0 {
		if first == 0 {
			first = o.FirstStep
		}
		out, err := s.exec(in.stats, t, 0, func() ([]*tensors.Tensor, error) {
			return s.evalExec.Exec(append([]any{scalar(in.dt, t)}, argsOf(y)...)...)
		})
		if err != nil {
			return err
		}
		in.stats.NFE++
		f, check, hAbs = out[:n], checkValue(out[n]), first
	} else {
		out, err := s.exec(in.stats, t, 0, func() ([]*tensors.Tensor, error) {
			return s.firstExec.Exec(append([]any{scalar(in.dt, t), scalar(in.dt, dir), tol[0], tol[1]}, argsOf(y)...)...)
		})
		if err != nil {
			return err
		}
		in.stats.NFE += 2
		f, hAbs, check = out[:n], checkValue(out[n]), checkValue(out[n+1])
	}
	defer func() { release(f) }()
	if !finite(check) || !finite(hAbs) {
		return &Error{Err: ErrNonFinite, T: t, Detail: "initial state or F(t0, y0)"}
	}
	// The selection's fallback for a vanishing F (1e-6, Hairer–Wanner) is
	// below float32's resolution once |t| exceeds about 2: start from a step
	// the time type can represent; the controller shrinks it if need be.
	hAbs = math.Max(hAbs, 100*minStepSize(in.dt, t, tEnd))
	exponent := 1 / float64(o.tableau.EmbeddedOrder+1)
	nonFiniteRun, steps := 0, 0
	for in.next < len(in.ts) {
		if steps >= o.MaxSteps {
			return &Error{Err: ErrMaxSteps, T: t, H: dir * hAbs, Detail: fmt.Sprintf("%d steps", steps)}
		}
		if o.MaxStep > 0 {
			hAbs = math.Min(hAbs, o.MaxStep)
		}
		remaining := math.Abs(tEnd - t)
		last := hAbs >= remaining
		if last {
			hAbs = remaining
		}
		if hAbs <= minStepSize(in.dt, t, tEnd) {
			cause := ErrStepUnderflow
			if nonFiniteRun > 0 {
				cause = ErrNonFinite
			}
			return &Error{Err: cause, T: t, H: dir * hAbs}
		}
		h := dir * hAbs
		y1, f1, ymid, ratio, err := in.step(t, h, tol, y, f)
		if err != nil {
			return err
		}
		steps++
		if !finite(ratio) {
			// A NaN or Inf estimate: reject and retry with a much smaller step.
			in.stats.Rejected++
			nonFiniteRun++
			release(y1)
			release(f1)
			release(ymid)
			hAbs *= dfactor
			continue
		}
		nonFiniteRun = 0
		if ratio > 1 {
			in.stats.Rejected++
			release(y1)
			release(f1)
			release(ymid)
			hAbs = nextStepSize(hAbs, ratio, exponent)
			continue
		}
		in.stats.Accepted++
		tNew := t + h
		if last {
			tNew = tEnd
		}
		if err := in.denseOutputs(t, tNew, h, y, y1, f, f1, ymid); err != nil {
			release(f1)
			release(ymid)
			in.drop(y1)
			return err
		}
		in.drop(y)
		release(f)
		release(ymid)
		y, f, t = y1, f1, tNew
		hAbs = nextStepSize(hAbs, ratio, exponent)
		in.stats.NextStep = hAbs
	}
	return nil
}

// denseOutputs emits every output time in (t, tNew]: the step's end exactly,
// the others through the step's interpolant.
func (in *integration) denseOutputs(t, tNew, h float64, y, y1, f, f1, ymid []*tensors.Tensor) error {
	s := in.s
	for in.next < len(in.ts) && in.dir*(in.ts[in.next]-tNew) <= 0 {
		tk := in.ts[in.next]
		if tk == tNew {
			if err := in.emit(y1, false); err != nil {
				return err
			}
			continue
		}
		x := (tk - t) / (tNew - t)
		args := append([]any{scalar(in.dt, x), scalar(in.dt, h)}, argsOf(y, y1, f, f1, ymid)...)
		yk, err := s.exec(in.stats, tk, h, func() ([]*tensors.Tensor, error) { return s.interpExec.Exec(args...) })
		if err != nil {
			return err
		}
		if err := in.emit(yk, true); err != nil {
			return err
		}
	}
	return nil
}

// fixed steps a fixed-grid method: each output interval is cut into
// ceil(|Δt|/Step) equal steps (one when Step is 0), so outputs are on the grid.
func (in *integration) fixed(y []*tensors.Tensor) error {
	s, o := in.s, in.s.opts
	n := in.n
	t0 := in.ts[0]
	out, err := s.exec(in.stats, t0, 0, func() ([]*tensors.Tensor, error) {
		return s.evalExec.Exec(append([]any{scalar(in.dt, t0)}, argsOf(y)...)...)
	})
	if err != nil {
		return err
	}
	in.stats.NFE++
	f := out[:n]
	defer func() { release(f) }()
	if !finite(checkValue(out[n])) {
		return &Error{Err: ErrNonFinite, T: t0, Detail: "initial state or F(t0, y0)"}
	}
	tol := [2]*tensors.Tensor{scalar(in.dt, 1), scalar(in.dt, 1)}
	steps := 0
	for i := 1; i < len(in.ts); i++ {
		span := in.ts[i] - in.ts[i-1]
		// The step count stays a float64: a tiny Step would overflow an
		// int (and wrap to one wrong step); MaxSteps ends such a run.
		count := 1.0
		if o.Step > 0 {
			count = math.Max(1, math.Ceil(math.Abs(span)/o.Step-1e-9))
		}
		h := span / count
		for k := 0; float64(k) < count; k++ {
			tk := in.ts[i-1] + float64(k)*h
			if steps >= o.MaxSteps {
				return &Error{Err: ErrMaxSteps, T: tk, H: h, Detail: fmt.Sprintf("%d steps", steps)}
			}
			y1, f1, _, check, err := in.step(tk, h, tol, y, f)
			if err != nil {
				return err
			}
			steps++
			in.stats.Accepted++
			in.drop(y)
			release(f)
			y, f = y1, f1
			if !finite(check) {
				return &Error{Err: ErrNonFinite, T: tk, H: h}
			}
		}
		if err := in.emit(y, false); err != nil {
			return err
		}
	}
	return nil
}
