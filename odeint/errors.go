package odeint

import (
	"errors"
	"fmt"
)

// Sentinel errors. A failed Solve returns an *Error that wraps one of them, so
// callers test the cause with errors.Is and read the time with errors.As.
var (
	// ErrStepUnderflow: the adaptive step size shrank below what the state's
	// floating-point type can resolve at the current time.
	ErrStepUnderflow = errors.New("odeint: step size underflow")
	// ErrMaxSteps: more steps (accepted and rejected) than Options.MaxSteps.
	ErrMaxSteps = errors.New("odeint: maximum number of steps exceeded")
	// ErrNonFinite: the state, the vector field or the error estimate holds a
	// NaN or an infinity that shrinking the step cannot remove.
	ErrNonFinite = errors.New("odeint: non-finite state or error estimate")
	// ErrInvalidOptions: a bad tolerance, time grid, method or norm setting.
	ErrInvalidOptions = errors.New("odeint: invalid options")
	// ErrShapeMismatch: the vector field returned tensors whose number, shape
	// or dtype differ from the state's.
	ErrShapeMismatch = errors.New("odeint: shape mismatch")
)

// Error is the error returned by Solve: the cause (one of the sentinel errors
// above, or an error from the backend), where it happened and a detail.
type Error struct {
	// Err is the cause; errors.Is(e, ErrMaxSteps) and friends match it.
	Err error
	// T is the time reached when the failure happened (the start time for
	// invalid input).
	T float64
	// H is the step size being tried, or 0 when no step was under way.
	H float64
	// Detail says more about the cause, e.g. which option is wrong.
	Detail string
}

// Error implements the error interface.
func (e *Error) Error() string {
	msg := e.Err.Error()
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.H != 0 {
		return fmt.Sprintf("%s (at t=%g, h=%g)", msg, e.T, e.H)
	}
	return fmt.Sprintf("%s (at t=%g)", msg, e.T)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func invalidf(t float64, format string, args ...any) *Error {
	return &Error{Err: ErrInvalidOptions, T: t, Detail: fmt.Sprintf(format, args...)}
}
