package freehorizon_test

import (
	"fmt"
	"math"

	"github.com/snopt-go/snopt/freehorizon"
)

// Learn the end time T of dx/dt = −x/2, x(0) = 1, with the loss ½x(T)² and
// the penalty (c/2)·T²: dL/dT = x(T)·F(T, x(T)) = −x(T)²/2. The feedback
// policy of eq. (16) is fed this iteration's dL/dT (and, in a real model,
// dL/dθ and θ of the ODE's parameters); it settles where c·T + dL/dT = 0.
func ExampleNewFeedback() {
	const c = 0.2
	dLdT := func(T float64) float64 { x := math.Exp(-T / 2); return -x * x / 2 }
	// README:freehorizon begin
	pol, err := freehorizon.NewFeedback(3, freehorizon.Config{LR: 0.5, C: c, Every: 1})
	if err != nil {
		panic(err)
	}
	for range 60 {
		if pol.Observe(freehorizon.Observation{DLdT: dLdT(pol.T())}) {
			// model.SetT1(pol.T()); pol.Last() describes the update.
		}
	}
	// pol.State() goes into a checkpoint; pol.Restore continues it exactly.
	// README:freehorizon end
	fmt.Printf("T = %.3f, stationary: %v\n", pol.T(), math.Abs(c*pol.T()+dLdT(pol.T())) < 1e-6)
	// Output:
	// T = 0.959, stationary: true
}
