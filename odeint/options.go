package odeint

import (
	"math"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Method names a built-in Runge–Kutta method.
type Method string

// Built-in methods. Dopri5 and Bosh3 are adaptive; RK4, Midpoint and Euler
// run on a fixed grid.
const (
	Dopri5   Method = "dopri5"
	Bosh3    Method = "bosh3"
	RK4      Method = "rk4"
	Midpoint Method = "midpoint"
	Euler    Method = "euler"
)

// TableauFor returns the built-in tableau of a method ("" means Dopri5).
func TableauFor(m Method) (*Tableau, error) {
	switch m {
	case Dopri5, "":
		return Dopri5Tableau, nil
	case Bosh3:
		return Bosh3Tableau, nil
	case RK4:
		return RK4Tableau, nil
	case Midpoint:
		return MidpointTableau, nil
	case Euler:
		return EulerTableau, nil
	}
	return nil, invalidf(0, "unknown method %q (want dopri5, bosh3, rk4, midpoint or euler)", m)
}

// NormKind chooses how per-component scaled errors become the one error
// ratio that accepts or rejects a step.
type NormKind int

const (
	// MixedRMS is the maximum over state tensors of each tensor's RMS
	// (torchdiffeq's default for a state tuple): a small tensor cannot hide
	// inside a large one.
	MixedRMS NormKind = iota
	// RMS is one root-mean-square over all components of all included tensors.
	RMS
)

// Defaults used by DefaultOptions and for zero-valued fields.
const (
	DefaultRTol     = 1e-7
	DefaultATol     = 1e-9
	DefaultMaxSteps = 10000
)

// Step-control constants (Hairer, Nørsett & Wanner II.4; torchdiffeq).
const (
	safety  = 0.9 // fraction of the optimal step taken
	ifactor = 10  // largest growth of the step in one go
	dfactor = 0.2 // largest shrink of the step after a rejection
)

// Options configures a solve. A nil *Options means DefaultOptions().
//
// RTol and ATol must be positive for an adaptive method (there is no
// zero-means-default for them: use DefaultOptions). The other zero values
// mean defaults, as each field says.
type Options struct {
	// Method selects a built-in tableau; "" means Dopri5.
	Method Method
	// Tableau, when set, overrides Method with a custom tableau (see NewTableau).
	Tableau *Tableau

	// RTol and ATol are the relative and absolute tolerances of adaptive
	// methods: a step is accepted when the norm of
	// err / (ATol + RTol·max(|y0|, |y1|)) is ≤ 1.
	RTol, ATol float64
	// FirstStep is the size of the first adaptive step; 0 selects it with
	// Hairer's algorithm (Solving ODEs I, II.4).
	FirstStep float64
	// MaxStep bounds the size of adaptive steps; 0 means unbounded.
	MaxStep float64
	// Step is the step of fixed-grid methods: each interval between output
	// times is cut into ceil(|Δt|/Step) equal steps, so outputs fall on the
	// grid. 0 means one step per output interval.
	Step float64
	// MaxSteps bounds the number of steps, accepted and rejected; 0 means
	// DefaultMaxSteps.
	MaxSteps int

	// Norm is how the scaled error of all state tensors becomes one ratio.
	Norm NormKind
	// NormExclude lists state tensors (by index) left out of error control:
	// with it the norm is a semi-norm (Kidger, Chen & Lyons 2020, "Hey, that's
	// not an ODE"). The adjoint uses it for the parameter-gradient accumulator.
	NormExclude []int

	// Observer, when set, is called at every output time, in order, with the
	// state there. An error it returns stops the solve and is returned.
	Observer func(index int, t float64, y []*tensors.Tensor) error
	// DropOutputs keeps only the final state in Solution.Ys (memory O(1) in
	// the number of output times); the tensors given to Observer are then
	// released after it returns, so it must copy what it keeps.
	DropOutputs bool
}

// DefaultOptions returns dopri5 with torchdiffeq's default tolerances
// (RTol 1e-7, ATol 1e-9).
func DefaultOptions() *Options {
	return &Options{Method: Dopri5, RTol: DefaultRTol, ATol: DefaultATol}
}

// resolved is a validated copy of Options with defaults filled in.
type resolved struct {
	Options
	tableau  *Tableau
	included []bool // per state tensor: part of the error norm
}

func resolve(o *Options, numState int) (*resolved, error) {
	if o == nil {
		o = DefaultOptions()
	}
	r := &resolved{Options: *o}
	r.tableau = o.Tableau
	if r.tableau == nil {
		tb, err := TableauFor(o.Method)
		if err != nil {
			return nil, err
		}
		r.tableau = tb
	}
	if r.MaxSteps == 0 {
		r.MaxSteps = DefaultMaxSteps
	}
	if r.MaxSteps < 0 {
		return nil, invalidf(0, "MaxSteps = %d, want ≥ 0", r.MaxSteps)
	}
	positiveOrZero := func(name string, v float64) error {
		if !(v >= 0) || math.IsInf(v, 0) {
			return invalidf(0, "%s = %g, want a finite value ≥ 0", name, v)
		}
		return nil
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"FirstStep", r.FirstStep}, {"MaxStep", r.MaxStep}, {"Step", r.Step}} {
		if err := positiveOrZero(f.name, f.v); err != nil {
			return nil, err
		}
	}
	if r.tableau.Adaptive() {
		for _, f := range []struct {
			name string
			v    float64
		}{{"RTol", r.RTol}, {"ATol", r.ATol}} {
			if !(f.v > 0) || math.IsInf(f.v, 0) {
				return nil, invalidf(0, "%s = %g, want a finite value > 0", f.name, f.v)
			}
		}
	}
	if r.Norm != MixedRMS && r.Norm != RMS {
		return nil, invalidf(0, "unknown Norm %d", r.Norm)
	}
	r.included = make([]bool, numState)
	for i := range r.included {
		r.included[i] = true
	}
	for _, idx := range r.NormExclude {
		if idx < 0 || idx >= numState {
			return nil, invalidf(0, "NormExclude index %d out of range for %d state tensors", idx, numState)
		}
		r.included[idx] = false
	}
	if r.tableau.Adaptive() && len(r.NormExclude) > 0 {
		any := false
		for _, in := range r.included {
			any = any || in
		}
		if !any {
			return nil, invalidf(0, "NormExclude leaves no state tensor under error control")
		}
	}
	return r, nil
}
